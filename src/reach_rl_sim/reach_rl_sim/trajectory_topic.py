"""What a simulated robot does with franka_ros2's trajectory topic: a trajectory_msgs/JointTrajectory
handed to the joint_trajectory_controller model (:mod:`reach_rl_sim.trajectory_controller`).

No ROS import: a message is read by its fields.
"""
from reach_rl_sim.trajectory_controller import TrajectoryController

TRAJECTORY_TOPIC = "/joint_trajectory_controller/joint_trajectory"


def seconds(stamp) -> float:
    """A builtin_interfaces Time or Duration in seconds."""
    return stamp.sec + 1e-9 * stamp.nanosec


def receive(controller: TrajectoryController, msg, now_s: float) -> str:
    """``msg`` (trajectory_msgs/JointTrajectory) received by ``controller`` at ``now_s`` [s, the
    stamps' clock]: '' when accepted, else :meth:`TrajectoryController.receive`'s reason."""
    points = msg.points
    return controller.receive(
        list(msg.joint_names), seconds(msg.header.stamp),
        [seconds(p.time_from_start) for p in points], [p.positions for p in points],
        [p.velocities for p in points], [p.accelerations for p in points], now_s,
        efforts=[p.effort for p in points])
