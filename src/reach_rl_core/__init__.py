"""reach_rl_core: what training and deployment share, and nothing else.

The Franka model (joint names, limits, kinematics: :mod:`.franka_model`), the safety filter's
math (:mod:`.safety_filter`), the self-collision model (:mod:`.self_collision`) and the policy
file's contract (:mod:`.policy_file`): numpy only; functions that take torch tensors import
torch when given one. Besides, the QoS profiles every node uses (:mod:`.ros_qos`, rclpy).
Both reach_rl_train and reach_rl_deploy import this package; neither imports the other.
"""
