"""What pose targets (``task.target: pose``) add to the reach task: the observation's layout per
target type, target orientations, the orientation reward and success.

A pose target is a position and an orientation of the TCP frame ``<arm>_hand_tcp`` in the base
frame. Orientations are drawn as Isaac-Reach-Franka draws them: pointing down (roll 0, pitch pi)
with any yaw (uniform in [-pi, pi)), then, with ``task.down_cone`` > 0, tilted so the TCP z axis
points uniformly over the cone of that half-angle around straight down
(:func:`reach_rl_core.orientation.sample_down_orientations`, from the task's torch generator).
The observation carries the target as a unit quaternion (x, y, z, w) with w >= 0, the policy
file's ``target_quat``; the network reads it through rotation matrices, so q and -q are the same
target to it (:class:`reach_rl_train.actor_critic.ObservationEncoder`).
"""
import math
from typing import Tuple

import torch

from reach_rl_core.filter_limits import POSE_BRAKE_MARGIN
from reach_rl_core.franka_model import JointLimits
from reach_rl_core.orientation import (ORIENTATION_TOLERANCE, matrix_to_quaternion,
                                       orientation_error_angle)
from reach_rl_core.policy_file import INPUT_SHAPES, POINT, POINT_INPUTS, POSE
from reach_rl_train import torch_arrays

__all__ = ["POINT", "POSE", "ORIENTATION_TOLERANCE", "input_names", "obs_layout", "obs_dim",
           "tcp_pose", "orientation_error",
           "as_quaternion", "sin_axis", "LIMIT_CLEARANCE", "clearance_range", "joint7_range",
           "joint7_turn"]

# rad that pose training keeps between each joint and its limits where it plans ahead: joint 7's
# way round (joint7_turn) and the IK (reach_rl_train.ik_reference): where the command limits of
# pose training brake every joint to rest (filter_limits.POSE_BRAKE_MARGIN).
LIMIT_CLEARANCE = POSE_BRAKE_MARGIN


def input_names(target_type: str) -> Tuple[str, ...]:
    """The policy file's inputs for ``target_type``, in the contract's order: a point policy's
    (joint_pos, joint_vel, target_pos, prev_command) or all of them (target_quat after
    target_pos)."""
    return POINT_INPUTS if target_type == POINT else tuple(INPUT_SHAPES)


def obs_layout(target_type: str) -> Tuple[Tuple[str, int], ...]:
    """(input name, width) of each part of the task's observation, in order."""
    return tuple((name, INPUT_SHAPES[name]) for name in input_names(target_type))


def obs_dim(target_type: str) -> int:
    """The observation's width: 24 for point targets, 28 for pose targets."""
    return sum(n for _, n in obs_layout(target_type))


def as_quaternion(rotation: torch.Tensor) -> torch.Tensor:
    """The observation's ``target_quat`` (..., 4), (x, y, z, w) with w >= 0, of ``rotation``."""
    return matrix_to_quaternion(rotation)


def tcp_pose(joint_pos: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """TCP position (..., 3) m and rotation (..., 3, 3) in the base frame, from joint positions
    (:func:`reach_rl_train.torch_arrays.tcp_pose`: any backend, as the task reads the TCP)."""
    return torch_arrays.tcp_pose(joint_pos)


def orientation_error(rotation: torch.Tensor, target_rotation: torch.Tensor) -> torch.Tensor:
    """Angle [rad] in [0, pi] between the TCP's orientation and the target's, shape (...)."""
    return orientation_error_angle(rotation, target_rotation)


def within_tolerance(distance: torch.Tensor, angle, radius: float) -> torch.Tensor:
    """Whether a target counts as reached (bool, shape of ``distance``): the TCP closer than
    ``radius`` [m] to its position and, for pose targets (``angle`` [rad] not None), within
    ORIENTATION_TOLERANCE (5 deg) of its orientation."""
    within = distance < radius
    return within if angle is None else within & (angle <= ORIENTATION_TOLERANCE)


def sin_axis(rotation: torch.Tensor) -> torch.Tensor:
    """sin(angle) * axis (..., 3) of rotation matrices (..., 3, 3): half the vector of R - R^T;
    for a small rotation, its rotation vector [rad]."""
    r = rotation
    return 0.5 * torch.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                              r[..., 1, 0] - r[..., 0, 1]], -1)


def clearance_range(limits: JointLimits) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Each joint's limits less LIMIT_CLEARANCE: (low, high), 7 floats each [rad]."""
    return (tuple(float(x) + LIMIT_CLEARANCE for x in limits.pos_min),
            tuple(float(x) - LIMIT_CLEARANCE for x in limits.pos_max))


def joint7_range(limits: JointLimits) -> Tuple[float, float]:
    """The range [rad] :func:`joint7_turn` keeps joint 7 in: its limits less LIMIT_CLEARANCE."""
    low, high = clearance_range(limits)
    return low[6], high[6]


def joint7_turn(rotation: torch.Tensor, target_rotation: torch.Tensor, q7: torch.Tensor,
                q7_low: float, q7_high: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """How joint 7 should turn to give the hand the target's yaw: ``(twist, turn)`` [rad], (...).

    ``twist`` in (-pi, pi] is the rotation about the hand's z axis (its twist in
    ``rotation^T target_rotation``, base-frame rotations (..., 3, 3)) that joint 7's ``q7`` [rad]
    would add to reach the target's yaw the short way. ``turn`` is ``twist`` or ``twist -+ 2 pi``:
    the one that ends joint 7 inside [``q7_low``, ``q7_high``], or, where none does (a yaw that
    the other joints must help with), the one that ends it least far outside. Continuous while
    joint 7 moves along it; it jumps only between two ways out of range.
    """
    error = rotation.transpose(-1, -2) @ target_rotation
    twist = torch.atan2(error[..., 1, 0] - error[..., 0, 1], error[..., 0, 0] + error[..., 1, 1])
    turn, cost = twist, None
    for candidate in (twist, twist - 2.0 * math.pi, twist + 2.0 * math.pi):
        end = q7 + candidate
        beyond = (end - q7_high).clamp(min=0.0) + (q7_low - end).clamp(min=0.0)
        candidate_cost = beyond + 1e-3 * candidate.abs()  # ties: the shorter way
        if cost is None:
            cost = candidate_cost
        else:
            turn = torch.where(candidate_cost < cost, candidate, turn)
            cost = torch.minimum(candidate_cost, cost)
    return twist, turn
