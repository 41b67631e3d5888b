"""The reach task's reward terms, per step, as pure functions of the arm's state and the target
(:class:`reach_rl_train.reach_task.ReachTask` adds them up): reaching, orientation (pose
targets) and posture. Weights and scales: :class:`reach_rl_train.config.RewardConfig`.
"""
import torch

from reach_rl_core.franka_model import limit_distance
from reach_rl_train.config import RewardConfig


def reach_reward(distance, desired, prev_command, accel, joint_vel, w: RewardConfig, dt: float,
                 angle=None, detour=0.0):
    """Per-step reward for TCP ``distance`` [N] m, commands [N, 7] rad/s, joint accel [N, 7] rad/s^2;
    pose targets: with the orientation error ``angle`` [N] rad and joint 7's ``detour`` [N] rad
    (:func:`orientation_reward`'s terms added, and settling asked for near the pose rather than
    the point)."""
    near = torch.exp(-distance / w.near_scale)
    settle_near = near if angle is None else near * torch.exp(-angle / w.orientation_near_scale)
    reward = (-w.distance * distance
              + w.near * near
              + w.precise * torch.exp(-distance / w.precise_scale)
              - w.action_rate * (desired - prev_command).square().sum(-1)
              - w.acceleration * accel.square().sum(-1)
              - w.settle * settle_near * joint_vel.square().sum(-1))
    if angle is not None:
        reward = reward + orientation_reward(angle, distance, w, detour)
    return reward * dt


def posture_reward(q, home, pos_min, pos_max, w: RewardConfig, dt: float, weights=None):
    """Per-step null-space reward for joint positions ``q`` [N, 7] rad: pulls the redundant
    joints (``w.posture_joints``; ``weights``, the same as a tensor on q's device, saves a
    copy per call) toward ``home`` ([7] or [N, 7] rad: READY_POSE, or the pose targets' IK
    reference) and pushes every joint out of the last ``w.limit_margin`` rad before its limits."""
    if weights is None:
        weights = torch.tensor(w.posture_joints, device=q.device, dtype=q.dtype)
    posture = (weights * (q - home).square()).sum(-1)
    closeness = (1.0 - limit_distance(q, pos_min, pos_max) / w.limit_margin).clamp(min=0.0)
    return -(w.posture * posture + w.joint_limit * closeness.square().sum(-1)) * dt


def orientation_reward(angle: torch.Tensor, distance: torch.Tensor, w: RewardConfig,
                       detour=0.0) -> torch.Tensor:
    """The orientation terms of the reward per second (not yet scaled by policy_dt), for the
    angle [N] rad between the TCP's and the target's orientation and the TCP's ``distance`` [N] m
    from the target position (``reward.orientation*``): a linear cost everywhere, on the angle
    plus ``detour`` [N] rad (how much farther joint 7 has to go than the angle says:
    ``|turn| - |twist|`` of :func:`reach_rl_train.pose_target.joint7_turn`), and bonuses near
    the target position."""
    gate = torch.exp(-distance / w.orientation_gate_scale)
    return (-w.orientation * (angle + detour)
            + gate * (w.orientation_near * torch.exp(-angle / w.orientation_near_scale)
                      + w.orientation_precise * torch.exp(-angle / w.orientation_precise_scale)))
