"""reach_rl_sim: robots for trying the deploy side without a Franka, kept out of the product.

* :mod:`.franka_standin_node`: franka_ros2's joint_trajectory_controller data path (joint
  states, trajectories interpolated at 1 kHz by the model in :mod:`.trajectory_controller`) on
  a robot reached through libfranka -- franka-sim, the independent FCI emulator, or a real arm.
* :mod:`.sim_robot_node` (with :mod:`.sim_robot` and :mod:`.limit_monitor`): a kinematic
  simulated Franka written here, for quick tests without franka-sim.
"""

# SCHED_FIFO priority of the robot side's threads (franka_ros2's controller manager, here
# franka_standin_node and sim_robot_node), above the deploy node's (its rt_priority)
ROBOT_RT_PRIORITY = 85
