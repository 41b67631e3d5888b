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
from typing import Tuple

import torch

from reach_rl_core.orientation import (ORIENTATION_TOLERANCE, matrix_to_quaternion,
                                       orientation_error_angle)
from reach_rl_core.policy_file import INPUT_SHAPES, POINT, POINT_INPUTS, POSE
from reach_rl_train import torch_arrays
from reach_rl_train.config import RewardConfig

__all__ = ["POINT", "POSE", "ORIENTATION_TOLERANCE", "input_names", "obs_layout", "obs_dim",
           "orientation_reward", "tcp_pose", "orientation_error",
           "as_quaternion"]


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


def orientation_reward(angle: torch.Tensor, distance: torch.Tensor, w: RewardConfig) -> torch.Tensor:
    """The orientation terms of the reward per second (not yet scaled by policy_dt), for the
    angle [N] rad between the TCP's and the target's orientation and the TCP's ``distance`` [N] m
    from the target position (``reward.orientation*``): a linear cost everywhere, bonuses near
    the target position."""
    gate = torch.exp(-distance / w.orientation_gate_scale)
    return (-w.orientation * angle
            + gate * (w.orientation_near * torch.exp(-angle / w.orientation_near_scale)
                      + w.orientation_precise * torch.exp(-angle / w.orientation_precise_scale)))
