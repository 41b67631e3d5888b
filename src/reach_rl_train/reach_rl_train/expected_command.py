"""The command a trained Gaussian policy sends when it acts deterministically.

Training samples goals ``g ~ N(mean, std^2)`` [rad/s] and the task sends
``policy_command(limits, q, clamp(g, -scale, scale), prev, dt)``: a clip of ``g`` to an interval
that the action scale, the velocity bounds at ``q`` and the per-step change from the previous
command set (:func:`command_interval`). While ``std`` is larger than that per-step change (it
is, through most of training), the noise saturates the clip, so the command training sees for a
given mean is the *average* clip, much softer near the target than the clip of the mean. A
policy that then sends the clipped mean acts with a higher gain than the one it was trained
with: near the target it jumps between the two ends of the per-step change every step (a
period-2 limit cycle of a few millimetres; docs/training.md, "The deterministic command").

:func:`expected_command` is the mean of the limited command under the policy's own Gaussian,
in closed form: what the rollouts sent on average, without their noise. Elementwise torch
(``erf``, ``exp``), so the exported graph computes it too. Units: rad, rad/s, s.
"""
import math

import torch

from reach_rl_core.franka_model import like
from reach_rl_core.safety_filter import goal_bounds, policy_command
from reach_rl_train import torch_arrays  # noqa: F401  (reach_rl_core's math on tensors)


def _partial_mean(t: torch.Tensor) -> torch.Tensor:
    """``t * Phi(t) + phi(t)``: the antiderivative of the standard normal CDF ``Phi``."""
    cdf = 0.5 * (1.0 + torch.erf(t * (1.0 / math.sqrt(2.0))))
    return t * cdf + torch.exp(-0.5 * t * t) * (1.0 / math.sqrt(2.0 * math.pi))


def gaussian_clip_mean(mean: torch.Tensor, std: torch.Tensor, low: torch.Tensor,
                       high: torch.Tensor) -> torch.Tensor:
    """``E[clip(X, low, high)]`` for ``X ~ N(mean, std^2)``, elementwise (broadcasting); ``std``
    > 0. Where ``low > high`` the clip is ``high`` (as ``torch.clamp``), and so is the mean.

    ``E = low + integral over [low, high] of P(X > x) dx = low + std * (G(a) - G(b))`` with
    ``G(t) = t Phi(t) + phi(t)``, ``a = (mean - low) / std``, ``b = (mean - high) / std``."""
    low = torch.minimum(low, high)
    return low + std * (_partial_mean((mean - low) / std) - _partial_mean((mean - high) / std))


def command_interval(limits, joint_pos: torch.Tensor, prev_command: torch.Tensor,
                     action_scale: torch.Tensor, policy_dt: float):
    """``(low, high)`` [rad/s], shape (..., 7), such that the task's command for a goal ``g``
    [rad/s], ``policy_command(limits, q, clamp(g, -action_scale, action_scale), prev, dt)``
    (``action_scale``: rad/s per joint, (7)), is
    ``clamp(g, low, high)``: nested clips are one clip, ``clip(clip(x, a, b), c, d) =
    clip(x, clip(a, c, d), clip(b, c, d))``."""
    low, high = goal_bounds(limits, joint_pos)
    low = torch.maximum(low, -action_scale)  # the action clamp, then the velocity bounds
    high = torch.minimum(high, action_scale)
    step = like(joint_pos, limits.accel * policy_dt)  # as policy_command computes it
    lowest, highest = prev_command - step, prev_command + step  # the per-step change
    return (torch.minimum(torch.maximum(low, lowest), highest),
            torch.minimum(torch.maximum(high, lowest), highest))


def expected_command(limits, joint_pos, prev_command, mean, std, action_scale: torch.Tensor,
                     policy_dt: float) -> torch.Tensor:
    """The mean [rad/s], shape (..., 7), of the command the task sends for goals ``N(mean,
    std^2)`` [rad/s] at joint positions ``joint_pos`` [rad] after ``prev_command`` [rad/s]."""
    low, high = command_interval(limits, joint_pos, prev_command, action_scale, policy_dt)
    return gaussian_clip_mean(mean, std, low, high)


def deterministic_command(kind: str, limits, joint_pos, prev_command, mean, std,
                          action_scale: torch.Tensor, policy_dt: float) -> torch.Tensor:
    """The command [rad/s] a policy of goal mean ``mean`` and std ``std`` [rad/s] sends without
    sampling: ``kind`` "expected" (:func:`expected_command`) or "mean" (the limited mean)."""
    if kind == "expected":
        return expected_command(limits, joint_pos, prev_command, mean, std, action_scale,
                                policy_dt)
    return policy_command(limits, joint_pos,
                          torch.minimum(torch.maximum(mean, -action_scale), action_scale),
                          prev_command, policy_dt)
