"""The built-in simulator: thousands of Franka arms behind a joint-velocity interface, in torch.

Models what franka_ros2's joint velocity controller gives a client: the commanded joint
velocity is tracked through a first-order actuator lag (:mod:`reach_rl_core.actuator_lag`,
time constant ``tau`` per arm, 0 = ideal tracking) and integrated into joint positions, which stop at the joint position
limits. Runs batched on any torch device; the reach task sits on top of it (or of the
Isaac Gym backend, which offers the same members: ``joint_pos``, ``joint_vel``,
``set_state``, ``reset_where`` and ``step``).

Units: rad, rad/s, s.
"""
import torch

from reach_rl_core.actuator_lag import lag_step
from reach_rl_train import torch_arrays  # noqa: F401  (reach_rl_core's math on tensors)
from reach_rl_core.franka_model import NUM_JOINTS, JointLimits


class TorchArmSim:
    """Batched arm state ``joint_pos``/``joint_vel`` [N, 7] on ``device``."""

    STATE = ("joint_pos", "joint_vel")  # what a step replaces (see ReachTask.STATE)

    def __init__(self, num_envs: int, limits: JointLimits, device: torch.device):
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.pos_min = torch.tensor(limits.pos_min, device=self.device)
        self.pos_max = torch.tensor(limits.pos_max, device=self.device)
        self.joint_pos = torch.zeros(num_envs, NUM_JOINTS, device=self.device)
        self.joint_vel = torch.zeros(num_envs, NUM_JOINTS, device=self.device)

    def set_state(self, env_ids: torch.Tensor, joint_pos: torch.Tensor, joint_vel: torch.Tensor):
        """Teleport arms ``env_ids`` to ``joint_pos`` [k, 7] rad with ``joint_vel`` [k, 7] rad/s."""
        self.joint_pos[env_ids] = torch.max(torch.min(joint_pos, self.pos_max), self.pos_min)
        self.joint_vel[env_ids] = joint_vel

    def reset_where(self, mask: torch.Tensor, joint_pos: torch.Tensor, joint_vel: torch.Tensor):
        """``set_state`` for the arms where ``mask`` [N] is true, from ``joint_pos`` and
        ``joint_vel`` [N, 7] (rows of other arms unused); never waits for the device."""
        column = mask.unsqueeze(-1)
        clamped = torch.max(torch.min(joint_pos, self.pos_max), self.pos_min)
        self.joint_pos = torch.where(column, clamped, self.joint_pos)
        self.joint_vel = torch.where(column, joint_vel, self.joint_vel)

    def step(self, command: torch.Tensor, tau: torch.Tensor, dt: float):
        """Hold velocity ``command`` [N, 7] rad/s for ``dt`` s through lags ``tau`` [N] s
        (:func:`reach_rl_core.actuator_lag.lag_step`, exact over the step)."""
        vel, displacement = lag_step(self.joint_vel, command, tau.unsqueeze(-1), dt)
        pos = self.joint_pos + displacement
        clamped = torch.max(torch.min(pos, self.pos_max), self.pos_min)
        vel = torch.where(clamped != pos, torch.zeros_like(vel), vel)
        self.joint_pos = clamped
        self.joint_vel = vel
