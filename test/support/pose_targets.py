"""Pose targets the deploy tests send: geometry_msgs/PoseStamped messages, and three poses the
committed pose policies reach."""
import numpy as np

from geometry_msgs.msg import PoseStamped

from reach_rl_core.orientation import matrix_to_quaternion, rotation_from_rpy

# (x, y, z) m and yaw rad of the TCP pointing down (roll 0, pitch pi). Their yaws keep joint 7
# well inside its range: the committed pose policies miss yaws whose joint 7 angle lies within
# about 0.4 rad of its limits (issue 32, docs/training.md).
POSES = [(0.45, 0.15, 0.35, -0.4), (0.50, -0.15, 0.30, -1.2), (0.40, 0.05, 0.45, 2.4)]


def down_quaternion(yaw: float) -> np.ndarray:
    """(x, y, z, w) of the TCP pointing down with ``yaw`` [rad]."""
    return matrix_to_quaternion(rotation_from_rpy(0.0, np.pi, yaw))


def pose_message(position, quaternion, frame: str = "fr3_link0") -> PoseStamped:
    """A PoseStamped of ``position`` [m] and ``quaternion`` (x, y, z, w) in ``frame``."""
    msg = PoseStamped()
    msg.header.frame_id = frame
    p, o = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in position)
    o.x, o.y, o.z, o.w = (float(v) for v in quaternion)
    return msg
