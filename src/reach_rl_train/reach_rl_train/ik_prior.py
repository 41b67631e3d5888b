"""The IK prior of pose policies (``ppo.ik_prior_accel``): a joint-space controller toward the
encoder's inverse-kinematics step, whose command the policy's action mean adds to the
network's output (``ActorCritic.action_mean``, ``PolicyGraph``; in the policy file too)."""
from typing import Optional, Sequence

import torch
from torch import nn

from reach_rl_train.config import action_scales, task_filter_limits


class IKPrior(nn.Module):
    """A joint-space controller toward the encoder's IK step (pose targets), whose action the
    policy's mean adds to the network's output, so that the network learns corrections to a
    controller that already reaches most poses instead of reaching from standing still.

    Per joint, toward a step s [rad]: the speed from which braking at ``accel`` [rad/s^2] stops
    on it, sqrt(2 accel |s|), and within ``time`` [s] of it a proportional |s| / time. Constants
    of the task, not weights: buffers outside the state dict."""

    def __init__(self, accel: Sequence[float], time: float, action_scale: Sequence[float]):
        """``accel``: rad/s^2 per joint (7); ``time``: s; ``action_scale``: rad/s per unit of
        action, per joint (``config.action_scales``)."""
        super().__init__()
        self.register_buffer("accel", torch.tensor(accel, dtype=torch.float32), persistent=False)
        self.register_buffer("scale", torch.tensor(action_scale, dtype=torch.float32),
                             persistent=False)
        self.time = time

    @classmethod
    def from_config(cls, cfg) -> Optional["IKPrior"]:
        """``cfg.ppo``'s prior (``ik_prior_accel`` of the training's command limits'
        acceleration bounds, ``ik_prior_time``), or None where ``ik_prior_accel`` is 0."""
        if cfg.ppo.ik_prior_accel <= 0:
            return None
        accel = [cfg.ppo.ik_prior_accel * a for a in task_filter_limits(cfg.task).accel]
        return cls(accel, cfg.ppo.ik_prior_time, action_scales(cfg.task))

    def velocity(self, step: torch.Tensor) -> torch.Tensor:
        """The joint velocity [..., 7] rad/s toward the IK ``step`` [..., 7] rad."""
        size = step.abs()
        return torch.sign(step) * torch.minimum((2.0 * self.accel * size).sqrt(), size / self.time)

    def forward(self, step: torch.Tensor) -> torch.Tensor:
        """The same in units of action."""
        return self.velocity(step) / self.scale
