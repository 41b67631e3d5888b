"""TCP targets without ROS: what a target is, and why one is refused.

A point policy's target is a position; a pose policy's (``reach_rl/target_type`` "pose",
:mod:`reach_rl_core.policy_file`) is a position and an orientation: the unit quaternion
(x, y, z, w) of the TCP frame ``<robot>_hand_tcp`` in the base frame ``<robot>_link0``. Every
refusal is a string saying why ('' when the target is usable): the node logs it and stops the
arm. Positions in metres, angles in rad, everything in the base frame.
"""
import math
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from reach_rl_core.orientation import quaternion_norm_error, quaternion_to_matrix
from reach_rl_core.policy_file import POINT, POSE

# The message each target type travels in, as the ROS graph names it.
MESSAGE_TYPES = {POINT: "geometry_msgs/msg/PointStamped", POSE: "geometry_msgs/msg/PoseStamped"}
# What to do when a policy is sent the other type.
FIXES = {POINT: "send points (reach-rl-targets x,y,z) or deploy a pose policy",
         POSE: "send poses (reach-rl-targets x,y,z,roll,pitch,yaw) or deploy a point policy"}
QUATERNION_TOLERANCE = 1e-3  # a quaternion's | |q| - 1 | beyond this is refused
# rad: a pose may point this much farther from straight down than the trained cone, for the
# rounding of typed angles (a pitch of 3.14 is 0.09 degrees from pi).
DOWN_CONE_MARGIN = math.radians(1.0)


class Target(NamedTuple):
    """A TCP target: ``position`` [m], shape (3,), and for a pose policy ``quaternion``, shape
    (4,), (x, y, z, w) unit with w >= 0, the TCP frame's orientation; None: a point target."""

    position: np.ndarray
    quaternion: Optional[np.ndarray] = None


def pose_target(position: Sequence[float], quaternion: Sequence[float]) -> Target:
    """A pose Target from ``position`` [m] and a non-zero ``quaternion`` (x, y, z, w), which is
    normalised and given w >= 0 (the same rotation; core's ``matrix_to_quaternion`` form)."""
    q = np.asarray(quaternion, dtype=float)
    q = q / np.linalg.norm(q)
    return Target(np.asarray(position, dtype=float), -q if q[3] < 0.0 else q)


def down_angle(quaternion: Sequence[float]) -> float:
    """Angle [rad], in [0, pi], between the TCP z axis of the rotation ``quaternion`` (x, y, z, w;
    any non-zero length) and straight down, the base frame's -z."""
    z_axis = quaternion_to_matrix(np.asarray(quaternion, dtype=float))[:, 2]
    return math.atan2(math.hypot(z_axis[0], z_axis[1]), -z_axis[2])


def _frame_refusal(frame_id: str, base_frame: str) -> str:
    frame = frame_id.lstrip("/")
    return "" if frame in ("", base_frame) else "frame %r, expected %r or empty" % (frame,
                                                                                  base_frame)


def _box_refusal(point: np.ndarray, info) -> str:
    if info.target_in_box(point):
        return ""
    return ("(%.3f, %.3f, %.3f) m is outside the workspace the policy was trained for, "
            "x %.2f..%.2f, y %.2f..%.2f, z %.2f..%.2f m"
            % (tuple(point) + sum(zip(info.target_min, info.target_max), ())))


def target_refusal(frame_id: str, point: np.ndarray, base_frame: str, info) -> str:
    """Why a point target ``point`` [m] in frame ``frame_id`` cannot be used, or '' when it can
    (``info``: the policy's PolicyInfo, whose target box the point must lie in)."""
    if _frame_refusal(frame_id, base_frame):
        return _frame_refusal(frame_id, base_frame)
    if not np.all(np.isfinite(point)):
        return "non-finite coordinates %s" % point
    return _box_refusal(point, info)


def pose_refusal(frame_id: str, position: np.ndarray, quaternion: np.ndarray, base_frame: str,
                 info) -> str:
    """Why a pose target cannot be used, or '' when it can: ``position`` [m] and ``quaternion``
    (x, y, z, w) of the TCP frame in frame ``frame_id``; ``info``: a pose policy's PolicyInfo.

    Refused: another frame; NaN or inf; a quaternion whose length is off 1 by more than
    :data:`QUATERNION_TOLERANCE`; a position outside the trained box, or a TCP z axis more than
    the trained ``down_cone`` (+ :data:`DOWN_CONE_MARGIN`) from straight down (both named when
    both fail).
    """
    if _frame_refusal(frame_id, base_frame):
        return _frame_refusal(frame_id, base_frame)
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(quaternion))):
        return "non-finite position %s or orientation %s" % (position, quaternion)
    norm_error = float(quaternion_norm_error(np.asarray(quaternion, dtype=float)))
    if norm_error > QUATERNION_TOLERANCE:
        return ("orientation %s is not a unit quaternion: its length is off 1 by %.2g "
                "(at most %g)" % (quaternion, norm_error, QUATERNION_TOLERANCE))
    angle = down_angle(quaternion)
    reasons = [_box_refusal(position, info)]
    if angle > info.down_cone + DOWN_CONE_MARGIN:
        reasons.append("the TCP z axis points %.1f deg from straight down, the policy was "
                       "trained for at most %.1f deg" % (math.degrees(angle),
                                                         math.degrees(info.down_cone)))
    return "; ".join(r for r in reasons if r)


class Endpoint(NamedTuple):
    """A publisher on the target topic, as the ROS graph reports it."""

    node: str  # fully qualified node name
    topic_type: str  # e.g. geometry_msgs/msg/PointStamped
    gid: Tuple[int, ...]  # the endpoint's id: a new publisher has a new one


def type_mismatches(publishers: Iterable[Endpoint], target_type: str, topic: str,
                    seen: set) -> List[str]:
    """One refusal for each publisher in ``publishers`` not yet in ``seen`` (which it is then
    added to) whose message type is not the one a ``target_type`` policy takes on ``topic``.

    DDS never delivers such a publisher's messages to the node's subscription (one type per
    topic), so the graph is where the node learns that it is sent the wrong kind of target.
    """
    wanted = MESSAGE_TYPES[target_type]
    found = []
    for endpoint in publishers:
        if endpoint.topic_type == wanted or endpoint in seen:
            continue
        seen.add(endpoint)
        found.append("this %s policy takes %s, but %s publishes %s on %s, which never reaches "
                     "it: %s" % (target_type, wanted, endpoint.node, endpoint.topic_type, topic,
                                 FIXES[target_type]))
    return found
