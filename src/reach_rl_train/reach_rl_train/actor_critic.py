"""Actor-critic network whose input is the policy file's raw signals.

``ObservationEncoder`` turns raw joint positions, velocities, target and previous command
into features (including the TCP position by forward kinematics and the TCP-to-target
error; for pose targets also the orientation error, read through rotation matrices, and an
inverse-kinematics step toward the target pose), a running normaliser scales them, and two
MLPs give the action mean and the value; for pose targets the mean may add ``ik_prior.IKPrior``, a
controller toward the IK step that the network corrects.
``PolicyGraph`` is the deterministic part that is exported to ONNX; ``ActorCritic.command`` is
the same command on a model in training (the held-out judge's).
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from reach_rl_core import franka_model
from reach_rl_core.orientation import (orientation_error_angle, orientation_error_features,
                                       quaternion_to_matrix)
from reach_rl_train import ik_reference, torch_arrays
from reach_rl_train.expected_command import deterministic_command
from reach_rl_train.ik_prior import IKPrior
from reach_rl_train.normalizer import RunningNormalizer
from reach_rl_train.pose_target import (POINT, POSE, clearance_range, joint7_range, joint7_turn,
                                        obs_layout, sin_axis)

FINE_ERROR_SCALE = 0.02  # m; tanh(error / scale) resolves millimetres near the target
# rad; tanh(features / scale) resolves tenths of a degree near the target orientation
FINE_ORIENTATION_SCALE = 0.05
FINE_IK_SCALE = 0.05  # rad; tanh(step / scale) of the IK features


def split_obs(obs: torch.Tensor, target_type: str = POINT) -> List[torch.Tensor]:
    """[B, obs_dim] -> the contract inputs of ``target_type``'s policy, in order: joint_pos,
    joint_vel, target_pos, (pose: target_quat,) prev_command."""
    return list(torch.split(obs, [n for _, n in obs_layout(target_type)], dim=-1))


class ObservationEncoder(nn.Module):
    """Raw signals (rad, rad/s, m in the base frame, (x, y, z, w), rad/s) -> feature vector
    [B, dim]: 34 features for point targets; pose targets add 31 (:meth:`orientation`), and with
    ``ik_steps`` > 0 another 14 (:meth:`inverse_kinematics`)."""

    POINT_DIM = 7 + 7 + 3 + 3 + 3 + 3 + 1 + 7
    POSE_DIM = POINT_DIM + 6 + 3 + 6 + 6 + 3 + 3 + 1 + 3
    IK_DIM = 7 + 7
    dim = POINT_DIM  # (point targets'; an instance has its own)

    def __init__(self, target_type: str = POINT, robot: str = "fr3", ik_steps: int = 0):
        """``robot``: ``task.robot``, whose joint 7 range the pose features turn within;
        ``ik_steps``: ``ppo.ik_steps``."""
        super().__init__()
        self.target_type = target_type
        self.ik_steps = ik_steps if target_type == POSE else 0
        self.dim = self.POSE_DIM if target_type == POSE else self.POINT_DIM
        self.dim += self.IK_DIM if self.ik_steps else 0
        self.register_buffer("ready", torch.tensor(franka_model.READY_POSE, dtype=torch.float32))
        limits = franka_model.joint_limits(robot)
        self.joint7_range = joint7_range(limits)
        low, high = clearance_range(limits)
        self.register_buffer("ik_low", torch.tensor(low, dtype=torch.float32))
        self.register_buffer("ik_high", torch.tensor(high, dtype=torch.float32))

    def forward(self, joint_pos, joint_vel, target_pos, *rest):
        """``rest``: prev_command, or for pose targets target_quat then prev_command."""
        prev_command = rest[-1]
        if self.target_type == POSE:
            tcp, rotation = torch_arrays.tcp_pose(joint_pos)
        else:
            tcp = torch_arrays.tcp_position(joint_pos)
        error = target_pos - tcp
        distance = error.norm(dim=-1, keepdim=True)  # one ONNX node (ReduceL2)
        features = [joint_pos - self.ready, joint_vel, target_pos, tcp, error,
                    torch.tanh(error / FINE_ERROR_SCALE), distance, prev_command]
        if self.target_type == POSE:
            target_rot = quaternion_to_matrix(rest[0])
            orientation, turn = self.orientation(rotation, target_rot, joint_pos[..., 6])
            features += orientation
            if self.ik_steps:
                features += self.inverse_kinematics(joint_pos, turn, target_pos, target_rot)
        return torch.cat(features, -1)

    def inverse_kinematics(self, joint_pos, turn, target_pos, target_rot) -> List[torch.Tensor]:
        """The 14 IK features: where ``ik_steps`` damped-least-squares steps
        (:func:`reach_rl_train.ik_reference.refine`) take the joints toward the target pose, from
        ``joint_pos`` [B, 7] rad with joint 7 turned its way (``turn`` [B] rad), inside the limits
        less LIMIT_CLEARANCE: that step [rad] (7) and its tanh (7). A posture that gives the
        target pose, and a yaw beyond joint 7's range, the network need not find by itself."""
        q = ik_reference.turned(joint_pos, turn, self.joint7_range)
        for _ in range(self.ik_steps):
            q = ik_reference.refine(q, target_pos, target_rot, self.ik_low, self.ik_high)
        step = q - joint_pos
        return [step, torch.tanh(step / FINE_IK_SCALE)]

    def ik_step(self, raw: torch.Tensor) -> torch.Tensor:
        """The IK step [B, 7] rad (:meth:`inverse_kinematics`) inside raw features [B, dim]."""
        return raw[..., self.dim - self.IK_DIM:self.dim - self.IK_DIM + 7]

    def orientation(self, rotation, target, q7) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """The 31 pose features of the TCP rotation [B, 3, 3], the target rotation [B, 3, 3] and
        joint 7's position [B] rad, and with them joint 7's turn [B] rad: the target's x and y
        axes and the TCP's z axis in the base frame (9); then, all zero on target, the orientation
        error in the hand frame (:func:`reach_rl_core.orientation.orientation_error_features`,
        6), the same through tanh at ``FINE_ORIENTATION_SCALE`` (6), the error's sin(angle) *
        axis in the base frame (the joints' frame: 3) and its tanh (3), the angle [rad] (1), joint
        7's way to the target yaw (:func:`reach_rl_train.pose_target.joint7_turn`, rad) and its
        tanh (2); last, how far [rad] that turn would take joint 7 beyond its range, the yaw the
        other joints must give (1). Every one is a function of the rotation matrix: q and -q give
        the same features."""
        error = orientation_error_features(rotation, target)
        axes = target[..., :, :2].transpose(-1, -2).flatten(-2)
        base = sin_axis(target @ rotation.transpose(-1, -2))  # current -> target, base frame
        angle = orientation_error_angle(rotation, target).unsqueeze(-1)
        _, joint7 = joint7_turn(rotation, target, q7, *self.joint7_range)
        end = q7 + joint7
        beyond = end - end.clamp(*self.joint7_range)
        return [axes, rotation[..., :, 2], error, torch.tanh(error / FINE_ORIENTATION_SCALE), base,
                torch.tanh(base / FINE_ORIENTATION_SCALE), angle, joint7.unsqueeze(-1),
                torch.tanh(joint7 / FINE_ORIENTATION_SCALE).unsqueeze(-1), beyond.unsqueeze(-1)
                ], joint7


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
                 collectives=None, target_type: str = POINT, robot: str = "fr3", ik_steps: int = 0,
                 ik_prior: Optional[IKPrior] = None):
        """``collectives``: a torchrun job's (:mod:`reach_rl_train.distributed`), with which the
        normaliser merges every rank's statistics; None for one process. ``target_type``:
        ``task.target``, which sets the observation's layout and the encoder's features;
        ``robot``: ``task.robot``; ``ik_steps``: ``ppo.ik_steps``. ``ik_prior``: the
        controller whose action the mean adds to the network's output; None: none (and none
        without IK features)."""
        super().__init__()
        self.target_type = target_type
        self.encoder = ObservationEncoder(target_type, robot, ik_steps)
        self.ik_prior = ik_prior if self.encoder.ik_steps else None
        dim = self.encoder.dim
        self.normalizer = RunningNormalizer(dim, collectives=collectives)
        self.actor = mlp([dim] + list(hidden) + [num_actions])
        self.critic = mlp([dim] + list(hidden) + [1])
        self.log_std = nn.Parameter(torch.full((num_actions,), float(torch.tensor(init_std).log())))
        with torch.no_grad():  # small initial actions: start near "stand still"
            self.actor[-1].weight.mul_(0.01)
            self.actor[-1].bias.zero_()

    @classmethod
    def from_config(cls, cfg, collectives=None) -> "ActorCritic":
        """The network of training config ``cfg`` (reach_rl_train.config): its ppo and task
        sections."""
        return cls(cfg.ppo.hidden, cfg.ppo.init_std, collectives=collectives,
                   target_type=cfg.task.target, robot=cfg.task.robot, ik_steps=cfg.ppo.ik_steps,
                   ik_prior=IKPrior.from_config(cfg))

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Observation [B, obs_dim] -> the encoder's raw features [B, encoder.dim]."""
        return self.encoder(*split_obs(obs, self.target_type))

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Observation [B, obs_dim] -> the normalised features the MLPs read."""
        return self.normalizer(self.encode(obs))

    def action_mean(self, raw: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The Gaussian's mean [B, 7], units of action, from raw features and their normalised
        ``features``: the network's output, plus the IK prior."""
        mean = self.actor(features)
        if self.ik_prior is not None:
            mean = mean + self.ik_prior(self.encoder.ik_step(raw))
        return mean

    def distribution(self, raw: torch.Tensor, features: torch.Tensor
                     ) -> torch.distributions.Normal:
        """The policy of raw features and their normalised ``features``."""
        mean = self.action_mean(raw, features)
        # No argument validation: it checks std > 0 on the host, a GPU wait on every call.
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean),
                                          validate_args=False)

    def act(self, raw: torch.Tensor, generator: Optional[torch.Generator] = None
            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample actions for a rollout from raw features (:meth:`encode`): action, log-prob,
        value, mean, std; the normaliser updated with them. ``generator``: draw the exploration
        noise from it (default: torch's)."""
        self.normalizer.update(raw)
        features = self.normalizer(raw)
        dist = self.distribution(raw, features)
        if generator is None:
            action = dist.sample()
        else:
            noise = torch.randn(dist.mean.shape, generator=generator, device=raw.device)
            action = dist.mean + dist.stddev * noise
        return (action, dist.log_prob(action).sum(-1), self.critic(features).squeeze(-1),
                dist.mean, dist.stddev)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The Gaussian's mean [N, 7] (unit scale, unclamped)."""
        raw = self.encode(obs)
        return self.action_mean(raw, self.normalizer(raw))

    def command(self, obs: torch.Tensor, limits, action_scale: Sequence[float], policy_dt: float,
                kind: str = "expected") -> torch.Tensor:
        """The command [N, 7] rad/s that the policy file exported from this model sends for
        ``obs`` (:class:`PolicyGraph`, ``kind`` as ``ppo.deterministic_command``); ``limits``:
        the training's FilterLimits (``config.task_filter_limits``); ``action_scale``: rad/s per
        unit of action, per joint (``config.action_scales``)."""
        parts = split_obs(obs, self.target_type)
        joint_pos, prev_command = parts[0], parts[-1]
        action_scale = torch_arrays.constant(obs, action_scale, False)
        return deterministic_command(kind, limits, joint_pos, prev_command,
                                     self.act_deterministic(obs) * action_scale,
                                     self.log_std.exp() * action_scale, action_scale, policy_dt)


class PolicyGraph(nn.Module):
    """The exported policy: raw signals -> the joint velocity command [B, 7] rad/s it was trained
    to send, through the training's command limits (``limits``, a FilterLimits, over one policy
    step of ``policy_dt`` s: :func:`reach_rl_core.safety_filter.policy_command`): by default
    (``kind`` "expected") their mean under the policy's Gaussian
    (:mod:`reach_rl_train.expected_command`), else ("mean") the limited mean."""

    def __init__(self, actor_critic: ActorCritic, action_scale: Sequence[float], limits,
                 policy_dt: float, kind: str = "expected"):
        """``action_scale``: rad/s per unit of action, per joint (``config.action_scales``)."""
        super().__init__()
        scale = torch.tensor(action_scale, dtype=torch.float32,
                             device=actor_critic.log_std.device)
        self.limits = limits
        self.policy_dt = policy_dt
        self.kind = kind
        # rad/s, the trained Gaussian's std of the goal: a constant of the exported graph
        self.register_buffer("std", actor_critic.log_std.detach().exp() * scale)
        self.encoder = actor_critic.encoder
        self.normalizer = actor_critic.normalizer
        # clamp(actor(x), -1, 1) * scale == clamp(scaled actor(x), -scale, scale): the scale goes
        # into a copy of the output layer, one graph node fewer per inference.
        self.actor = copy.deepcopy(actor_critic.actor)
        with torch.no_grad():
            self.actor[-1].weight.mul_(scale.unsqueeze(-1))
            self.actor[-1].bias.mul_(scale)
        self.register_buffer("action_scale", scale)
        self.ik_prior = actor_critic.ik_prior

    def forward(self, *inputs):
        """The policy file's inputs, in order (``pose_target.input_names``): joint_pos,
        joint_vel, target_pos, (pose targets: target_quat,) prev_command."""
        joint_pos, prev_command = inputs[0], inputs[-1]
        raw = self.encoder(*inputs)
        mean = self.actor(self.normalizer(raw))
        if self.ik_prior is not None:
            mean = mean + self.ik_prior.velocity(self.encoder.ik_step(raw))
        return deterministic_command(self.kind, self.limits, joint_pos, prev_command, mean,
                                     self.std, self.action_scale, self.policy_dt)
