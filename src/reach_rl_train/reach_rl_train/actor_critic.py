"""Actor-critic network whose input is the policy file's raw signals.

``ObservationEncoder`` turns raw joint positions, velocities, target and previous command
into features (including the TCP position by forward kinematics and the TCP-to-target
error), a running normaliser scales them, and two MLPs give the action mean and the value.
``PolicyGraph`` is the deterministic part that is exported to ONNX; ``ActorCritic.command`` is
the same command on a model in training (the held-out judge's).
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from reach_rl_core import franka_model
from reach_rl_train import torch_arrays
from reach_rl_train.expected_command import deterministic_command
from reach_rl_train.normalizer import RunningNormalizer
from reach_rl_train.reach_task import OBS_LAYOUT

FINE_ERROR_SCALE = 0.02  # m; tanh(error / scale) resolves millimetres near the target


def split_obs(obs: torch.Tensor) -> List[torch.Tensor]:
    """[B, OBS_DIM] -> joint_pos, joint_vel, target_pos, prev_command (the contract inputs)."""
    return list(torch.split(obs, [n for _, n in OBS_LAYOUT], dim=-1))


class ObservationEncoder(nn.Module):
    """Raw signals (rad, rad/s, m in the base frame, rad/s) -> feature vector [B, 34]."""

    dim = 7 + 7 + 3 + 3 + 3 + 3 + 1 + 7

    def __init__(self):
        super().__init__()
        self.register_buffer("ready", torch.tensor(franka_model.READY_POSE, dtype=torch.float32))

    def forward(self, joint_pos, joint_vel, target_pos, prev_command):
        tcp = torch_arrays.tcp_position(joint_pos)
        error = target_pos - tcp
        distance = error.norm(dim=-1, keepdim=True)  # one ONNX node (ReduceL2)
        return torch.cat([joint_pos - self.ready, joint_vel, target_pos, tcp, error,
                          torch.tanh(error / FINE_ERROR_SCALE), distance, prev_command], -1)


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers = []  # type: List[nn.Module]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ELU())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Gaussian policy with a state-independent std, and a value function, on shared features."""

    def __init__(self, hidden: Sequence[int], init_std: float, num_actions: int = 7,
                 collectives=None):
        """``collectives``: a torchrun job's (:mod:`reach_rl_train.distributed`), with which the
        normaliser merges every rank's statistics; None for one process."""
        super().__init__()
        self.encoder = ObservationEncoder()
        self.normalizer = RunningNormalizer(ObservationEncoder.dim, collectives=collectives)
        self.actor = mlp([ObservationEncoder.dim] + list(hidden) + [num_actions])
        self.critic = mlp([ObservationEncoder.dim] + list(hidden) + [1])
        self.log_std = nn.Parameter(torch.full((num_actions,), float(torch.tensor(init_std).log())))
        with torch.no_grad():  # small initial actions: start near "stand still"
            self.actor[-1].weight.mul_(0.01)
            self.actor[-1].bias.zero_()

    def features(self, obs: torch.Tensor, update_normalizer: bool = False) -> torch.Tensor:
        raw = self.encoder(*split_obs(obs))
        if update_normalizer:
            self.normalizer.update(raw)
        return self.normalizer(raw)

    def distribution(self, features: torch.Tensor) -> torch.distributions.Normal:
        mean = self.actor(features)
        # No argument validation: it checks std > 0 on the host, a GPU wait on every call.
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean),
                                          validate_args=False)

    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None
            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample actions for a rollout: action, log-prob, value, mean, std (normaliser updated).
        ``generator``: draw the exploration noise from it (default: torch's)."""
        features = self.features(obs, update_normalizer=True)
        dist = self.distribution(features)
        if generator is None:
            action = dist.sample()
        else:
            noise = torch.randn(dist.mean.shape, generator=generator, device=obs.device)
            action = dist.mean + dist.stddev * noise
        return (action, dist.log_prob(action).sum(-1), self.critic(features).squeeze(-1),
                dist.mean, dist.stddev)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The Gaussian's mean [N, 7] (unit scale, unclamped)."""
        return self.actor(self.features(obs))

    def command(self, obs: torch.Tensor, limits, action_scale: float, policy_dt: float,
                kind: str = "expected") -> torch.Tensor:
        """The command [N, 7] rad/s that the policy file exported from this model sends for
        ``obs`` (:class:`PolicyGraph`, ``kind`` as ``ppo.deterministic_command``); ``limits``:
        the training's FilterLimits (``config.task_filter_limits``)."""
        joint_pos, _, _, prev_command = split_obs(obs)
        return deterministic_command(kind, limits, joint_pos, prev_command,
                                     self.act_deterministic(obs) * action_scale,
                                     self.log_std.exp() * action_scale, action_scale, policy_dt)


class PolicyGraph(nn.Module):
    """The exported policy: raw signals -> the joint velocity command [B, 7] rad/s it was trained
    to send, through the training's command limits (``limits``, a FilterLimits, over one policy
    step of ``policy_dt`` s: :func:`reach_rl_core.safety_filter.policy_command`): by default
    (``kind`` "expected") their mean under the policy's Gaussian
    (:mod:`reach_rl_train.expected_command`), else ("mean") the limited mean."""

    def __init__(self, actor_critic: ActorCritic, action_scale: float, limits, policy_dt: float,
                 kind: str = "expected"):
        super().__init__()
        self.limits = limits
        self.policy_dt = policy_dt
        self.kind = kind
        # rad/s, the trained Gaussian's std of the goal: a constant of the exported graph
        self.register_buffer("std", actor_critic.log_std.detach().exp() * action_scale)
        self.encoder = actor_critic.encoder
        self.normalizer = actor_critic.normalizer
        # clamp(actor(x), -1, 1) * scale == clamp(scaled actor(x), -scale, scale): the scale goes
        # into a copy of the output layer, one graph node fewer per inference.
        self.actor = copy.deepcopy(actor_critic.actor)
        with torch.no_grad():
            self.actor[-1].weight.mul_(action_scale)
            self.actor[-1].bias.mul_(action_scale)
        self.action_scale = action_scale

    def forward(self, joint_pos, joint_vel, target_pos, prev_command):
        features = self.normalizer(self.encoder(joint_pos, joint_vel, target_pos, prev_command))
        return deterministic_command(self.kind, self.limits, joint_pos, prev_command,
                                     self.actor(features), self.std, self.action_scale,
                                     self.policy_dt)
