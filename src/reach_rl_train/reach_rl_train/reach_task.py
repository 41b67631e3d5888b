"""The reach task: targets, commands, observations, rewards and resets, on any arm backend.

Each environment is one arm that gets ``targets_per_episode`` targets in a row, each held
for ``target_period_s``; the arm is reset (around the ready pose) only when an episode
ends, so the policy learns to go from wherever it is to the next target.

The observation is exactly the policy file's inputs, concatenated in ``OBS_LAYOUT`` order:
raw joint positions (rad) and velocities (rad/s) as the robot reports them (noisy, late),
the target (m, base frame) and the previous command sent (rad/s); pose targets
(``task.target: pose``, :mod:`reach_rl_train.pose_target`) add the target orientation as a
quaternion after the position (``pose_target.obs_layout``). All preprocessing lives in the
policy network, so the exported graph is self-contained.

Commands go through the same limits as the deploy safety filter before they reach the
backend: position-dependent velocity bounds, the braking curves of the position limits, and
the per-step change that the deploy side's acceleration bound allows.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch

from reach_rl_core import franka_model
from reach_rl_core.franka_model import NUM_JOINTS
from reach_rl_core.orientation import down_orientations, draw_down_orientations
from reach_rl_core.safety_filter import policy_command
from reach_rl_train import ik_reference, torch_arrays
from reach_rl_train.arm_sim import TorchArmSim
from reach_rl_train.config import (RandomizationConfig, RewardConfig, TaskConfig, action_scales,
                                   target_period, task_filter_limits)
from reach_rl_train.pose_target import (POINT, POSE, as_quaternion, clearance_range,
                                        joint7_range, joint7_turn, obs_dim, obs_layout,
                                        orientation_error, tcp_pose, within_tolerance)
from reach_rl_train.rewards import posture_reward, reach_reward

# point targets' observation (pose targets': pose_target.obs_layout(POSE), ReachTask.obs_dim)
OBS_LAYOUT = obs_layout(POINT)
OBS_DIM = obs_dim(POINT)


def make_backend(task: TaskConfig, num_envs: int, device: torch.device):
    """The arm simulator named by ``task.backend``."""
    limits = franka_model.joint_limits(task.robot)
    if task.backend == "torch":
        return TorchArmSim(num_envs, limits, device)
    from reach_rl_train.isaacgym_backend import IsaacGymArm  # needs Isaac Gym installed

    return IsaacGymArm(num_envs, limits, device, task.policy_dt,
                       viewer=True if task.isaacgym_viewer else None)


class ReachTask:
    """Batched reach task over ``num_envs`` arms; ``step(actions)`` -> obs, reward, done, info."""

    # The tensors a step reads and replaces: what a CUDA graph of steps must carry over
    # (:class:`reach_rl_train.cuda_graph.StateCarry`); pose targets add POSE_STATE.
    STATE = ("command", "target", "reach_step", "tau", "latency", "history", "episode_step",
             "episode_return")
    POSE_STATE = ("target_rot", "target_quat", "reference")

    def __init__(self, task: TaskConfig, reward: RewardConfig, randomization: RandomizationConfig,
                 num_envs: int, device="cpu", seed: int = 0, backend=None):
        self.cfg, self.reward_cfg, self.rand_cfg = task, reward, randomization
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dt = task.policy_dt
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.backend = backend if backend is not None else make_backend(task, num_envs, self.device)
        self.limits = franka_model.joint_limits(task.robot)
        self.steps_per_target = int(round(target_period(task) / task.policy_dt))
        self.max_episode_steps = self.steps_per_target * task.targets_per_episode
        dev = self.device
        self.ready = torch.tensor(franka_model.READY_POSE, device=dev, dtype=torch.float32)
        self.target_min = torch.tensor(task.target_min, device=dev)
        self.target_max = torch.tensor(task.target_max, device=dev)
        # The deploy filter's own bounds (task.interface's); its jerk bound, which the robot
        # side meets every 1 ms, is not resolved by a 50 Hz policy step.
        deploy = task_filter_limits(task)
        self.filter_limits = deploy
        self.max_command_change = self._tensor(deploy.accel) * task.policy_dt  # rad/s per step
        self.pos_min = torch.tensor(self.limits.pos_min, device=dev)
        self.pos_max = torch.tensor(self.limits.pos_max, device=dev)
        self.pose = task.target == POSE
        self.action_scale = torch.tensor(action_scales(task), device=dev)  # rad/s per unit
        self.joint7_range = joint7_range(self.limits)
        # the posture term's home: READY_POSE, or for pose targets with reward.pose_reference
        # the IK reference (reach_rl_train.ik_reference), kept LIMIT_CLEARANCE inside the limits
        self.reference_low, self.reference_high = (
            torch.tensor(bound, device=dev) for bound in clearance_range(self.limits))
        self.use_reference = self.pose and reward.pose_reference
        self.obs_dim = obs_dim(task.target)
        self.posture_weights = self._tensor(reward.pose_posture_joints if self.pose
                                            else reward.posture_joints)
        self.noise_std = self._tensor([randomization.joint_pos_noise] * NUM_JOINTS
                                      + [randomization.joint_vel_noise] * NUM_JOINTS)
        self.env_index = torch.arange(num_envs, device=dev)
        n = num_envs
        self.command = torch.zeros(n, NUM_JOINTS, device=dev)
        self.target = torch.zeros(n, 3, device=dev)
        if self.pose:  # the target orientation: rotation (base frame) and quaternion, w >= 0
            self.target_rot = torch.eye(3, device=dev).repeat(n, 1, 1)
            self.target_quat = as_quaternion(self.target_rot)
            self.reference = self.ready.repeat(n, 1)
        self.episode_step = torch.zeros(n, dtype=torch.long, device=dev)
        self.reach_step = torch.full((n,), -1, dtype=torch.long, device=dev)
        self.tau = torch.zeros(n, device=dev)
        self.latency = torch.zeros(n, dtype=torch.long, device=dev)
        # history[k] = joint state observed k policy steps ago, k = 0..latency_steps_max
        self.history = torch.zeros(randomization.latency_steps_max + 1, n, 2 * NUM_JOINTS, device=dev)
        self.episode_return = torch.zeros(n, device=dev)

    def state_holders(self):
        """``(holder, STATE)`` of the task and its backend: what a StateCarry of a CUDA graph of
        steps declares (:class:`reach_rl_train.cuda_graph.StateCarry`; the built-in simulator's
        backend, whose STATE it has)."""
        state = self.STATE + (self.POSE_STATE if self.pose else ())
        return [(self, state), (self.backend, self.backend.STATE)]

    def _tensor(self, values) -> torch.Tensor:
        return torch.tensor(values, device=self.device, dtype=torch.float32)

    # -- sampling -------------------------------------------------------------------------
    def _uniform(self, shape, low, high):
        u = torch.rand(shape, generator=self.generator, device=self.device)
        return low + (high - low) * u

    # Sampling and resets take a mask [N] of the environments to change and draw for all of
    # them: no data-dependent shapes, so a step never waits for the device (GPU).
    def _draw_targets(self) -> Tuple[torch.Tensor, ...]:
        """New targets' random numbers for every environment: positions [N, 3] m, then (pose)
        ``draw_down_orientations``' (a pose task draws a point task's positions)."""
        position = (self._uniform((self.num_envs, 3), self.target_min, self.target_max),)
        return position + (draw_down_orientations(self._uniform, self.num_envs,
                                                  self.cfg.down_cone) if self.pose else ())

    def _set_targets(self, mask: torch.Tensor, draws: Sequence[torch.Tensor]):
        """The environments of ``mask`` take the targets of ``draws`` (:meth:`_draw_targets`):
        one pass of the orientation, quaternion and IK-reference arithmetic a step."""
        self.target = torch.where(mask.unsqueeze(-1), draws[0], self.target)
        if self.pose:
            rotation = down_orientations(draws[1:], self.cfg.down_cone)
            self.target_rot = torch.where(mask[:, None, None], rotation, self.target_rot)
            self.target_quat = torch.where(mask.unsqueeze(-1), as_quaternion(rotation),
                                           self.target_quat)
            self.reference = torch.where(mask.unsqueeze(-1), ik_reference.start(
                self.backend.joint_pos, rotation, self.joint7_range), self.reference)
        self.reach_step = torch.where(mask, torch.full_like(self.reach_step, -1), self.reach_step)

    def _sample_randomization(self, mask: torch.Tensor):
        r = self.rand_cfg
        if not r.enabled:
            return  # tau and latency stay 0
        tau = self._uniform((self.num_envs,), r.actuator_tau_min, r.actuator_tau_max)
        span = r.latency_steps_max - r.latency_steps_min + 1
        latency = r.latency_steps_min + torch.randint(span, (self.num_envs,),
                                                      generator=self.generator, device=self.device)
        self.tau = torch.where(mask, tau, self.tau)
        self.latency = torch.where(mask, latency, self.latency)

    # -- resets ---------------------------------------------------------------------------
    def reset(self, stagger: bool = False) -> torch.Tensor:
        """Reset every environment; returns the first observation [N, OBS_DIM]. ``stagger``
        starts each at a random step of its first target period, so that target switches and
        episode ends spread over time (training; evaluation starts every target afresh)."""
        self._reset_envs(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        if stagger:
            self.episode_step = torch.randint(self.steps_per_target, (self.num_envs,),
                                              generator=self.generator, device=self.device)
        return self._observe()

    def _reset_envs(self, mask: torch.Tensor, pending=None):
        """Reset the environments of ``mask``; ``pending`` (target_mask, draws): targets drawn
        before, set in one pass with the reset's (as the two in turn would set them)."""
        noise = self._uniform((self.num_envs, NUM_JOINTS), -self.cfg.start_noise,
                              self.cfg.start_noise)
        zeros = torch.zeros(self.num_envs, NUM_JOINTS, device=self.device)
        self.backend.reset_where(mask, self.ready + noise, zeros)
        column = mask.unsqueeze(-1)
        self.command = torch.where(column, zeros, self.command)
        self.episode_step = torch.where(mask, torch.zeros_like(self.episode_step), self.episode_step)
        self.episode_return = torch.where(mask, torch.zeros_like(self.episode_return),
                                          self.episode_return)
        draws = self._draw_targets()
        target_mask, earlier = pending if pending is not None else (mask, draws)
        self._set_targets(target_mask | mask, [torch.where(column if d.dim() > 1 else mask, d, e)
                                               for d, e in zip(draws, earlier)])
        self._sample_randomization(mask)
        state = torch.cat([self.backend.joint_pos, zeros], -1)
        self.history = torch.where(column.unsqueeze(0), state.unsqueeze(0), self.history)

    # -- observation ----------------------------------------------------------------------
    def _observe(self) -> torch.Tensor:
        state = torch.cat([self.backend.joint_pos, self.backend.joint_vel], -1)
        self.history = torch.cat([state.unsqueeze(0), self.history[:-1]], 0)
        seen = self.history[self.latency, self.env_index]
        if self.rand_cfg.enabled:
            seen = seen + self.noise_std * torch.randn(seen.shape, generator=self.generator,
                                                       device=self.device)
        if self.pose:
            return torch.cat([seen, self.target, self.target_quat, self.command], -1)
        return torch.cat([seen, self.target, self.command], -1)

    def tcp_position(self) -> torch.Tensor:
        """True TCP position [N, 3] m in the base frame."""
        return torch_arrays.tcp_position(self.backend.joint_pos)

    # -- step -----------------------------------------------------------------------------
    def limit_command(self, desired: torch.Tensor) -> torch.Tensor:
        """The command the deploy filter would let through from ``desired`` [N, 7] rad/s:
        clamped to the (position-dependent, braking) velocity bounds, then rate-limited
        (:func:`reach_rl_core.safety_filter.policy_command`, as the exported graph does)."""
        return policy_command(self.filter_limits, self.backend.joint_pos, desired, self.command,
                              self.dt)

    def _pose_errors(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The TCP's distance [N] m and orientation error [N] rad to the pose target, and joint
        7's detour [N] rad (how much farther it must turn than the angle says)."""
        position, rotation = tcp_pose(self.backend.joint_pos)
        twist, turn = joint7_turn(rotation, self.target_rot, self.backend.joint_pos[:, 6],
                                  *self.joint7_range)
        return ((self.target - position).norm(dim=-1),
                orientation_error(rotation, self.target_rot), turn.abs() - twist.abs())

    def _posture_home(self) -> torch.Tensor:
        """Where the posture term pulls: READY_POSE, or the IK reference refined one step."""
        if not self.use_reference:
            return self.ready
        self.reference = ik_reference.refine(self.reference, self.target, self.target_rot,
                                             self.reference_low, self.reference_high)
        return self.reference

    def step(self, actions: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                   Dict[str, torch.Tensor]]:
        """Apply policy ``actions`` [N, 7] (unit scale) for one policy step.

        Returns observation [N, obs_dim], reward [N], done [N] (episode ended by time limit;
        those envs are already reset) and info, every entry [N]: ``target_done`` (bool: the
        env's target period ended this step), and for those envs ``final_error`` m,
        ``success`` (0/1), ``time_to_reach`` s (nan where never within ``success_radius``);
        ``episode_return`` for the envs whose episode ended (``done``). Pose targets: also
        ``final_orientation_error`` rad; success and time_to_reach then ask for both the radius
        and ``ORIENTATION_TOLERANCE``.
        Read them through :func:`select_results`.
        """
        desired = actions.clamp(-1.0, 1.0) * self.action_scale
        prev_command = self.command
        prev_vel = self.backend.joint_vel
        self.command = self.limit_command(desired)
        self.backend.step(self.command, self.tau, self.dt)
        accel = (self.backend.joint_vel - prev_vel) / self.dt
        if self.pose:
            distance, angle, detour = self._pose_errors()
        else:
            distance, angle, detour = (self.target - self.tcp_position()).norm(dim=-1), None, 0.0
        reward = reach_reward(distance, desired, prev_command, accel, self.backend.joint_vel,
                              self.reward_cfg, self.dt, angle, detour)
        reward = reward + posture_reward(self.backend.joint_pos, self._posture_home(),
                                         self.pos_min, self.pos_max, self.reward_cfg, self.dt,
                                         self.posture_weights)
        self.episode_return += reward
        self.episode_step += 1

        within = within_tolerance(distance, angle, self.cfg.success_radius)
        step_in_target = (self.episode_step - 1) % self.steps_per_target + 1
        self.reach_step = torch.where((self.reach_step < 0) & within, step_in_target,
                                      self.reach_step)
        target_done = step_in_target == self.steps_per_target
        done = self.episode_step >= self.max_episode_steps
        info = {
            "target_done": target_done,
            "final_error": distance,
            "success": within.float(),
            "time_to_reach": torch.where(self.reach_step >= 0, self.reach_step.float() * self.dt,
                                         torch.full_like(distance, math.nan)),
            "episode_return": self.episode_return.clone(),
        }
        if angle is not None:
            info["final_orientation_error"] = angle
        self._reset_envs(done, pending=(target_done, self._draw_targets()))
        return self._observe(), reward, done, info


def select_results(infos, dones) -> Dict[str, torch.Tensor]:
    """The per-target results of a run of steps' ``infos`` (and their ``dones``), in step
    order: ``final_error``, ``success``, ``time_to_reach`` (pose targets: and
    ``final_orientation_error``) of every ended target period, and ``episode_return`` of every
    ended episode (1-D tensors; one wait for the device)."""
    targets = torch.stack([i["target_done"] for i in infos])
    episodes = torch.stack(list(dones)).bool()
    keys = ("final_error", "success", "time_to_reach", "final_orientation_error")
    results = {key: torch.stack([i[key] for i in infos])[targets]
               for key in keys if key in infos[0]}
    results["episode_return"] = torch.stack([i["episode_return"] for i in infos])[episodes]
    return results

