"""Evaluate a policy file on held-out targets in the built-in simulator, through onnxruntime.

A target counts as reached (success) when the TCP is within ``success_radius`` (1 cm) of
it when its period (3 s; pose targets 4 s) ends, as the task judges it; a pose target
(``task.target: pose``) when its orientation is also within ``ORIENTATION_TOLERANCE`` (5 deg),
and its figures add the final orientation error (median, p95) and give the time to both. Each
condition runs the same held-out targets, ``in_a_row`` per simulated arm: each from wherever
the previous one left the arm, the first from the start pose (ready pose,
``task.start_noise``). Over the whole run it also reports how close any joint came to its
position limits, and (with ``reach_rl_core.self_collision``) the smallest link separation.
"""
import math
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from reach_rl_core.franka_model import limit_distance
from reach_rl_train import torch_arrays  # noqa: F401  (reach_rl_core's math on tensors)
from reach_rl_deploy.policy_runtime import Policy
from reach_rl_train.actor_critic import split_obs
from reach_rl_train.config import GoalConfig, RandomizationConfig, TrainConfig, config_from
from reach_rl_train.cuda_graph import CapturedCall, StateCarry
from reach_rl_train.pose_target import POINT, POSE, input_names
from reach_rl_train.reach_task import ReachTask, select_results

# reach-rl-eval's targets, seed and targets per arm: training's held-out judgement's (section goal)
EVAL_DEFAULTS = GoalConfig()
# The figure of the median time to success, per target type: to 1 cm; to 1 cm and 5 deg.
TIME_KEY = {POINT: "median_time_to_1cm_s", POSE: "median_time_to_pose_s"}
# s, the median time from which each target stays reached to its period's end (held_times)
HELD_KEY = "median_time_held_s"


def tolerance(target_type: str) -> str:
    """Where a ``target_type`` target counts as reached: what success, the time and the held
    time ask for."""
    return "1 cm and 5 deg" if target_type == POSE else "1 cm"


def median_time(times: np.ndarray) -> float:
    """The median [s] of per-target ``times``, nan (never) counting as infinitely late."""
    return float(np.median(np.where(np.isnan(times), np.inf, times)))


def held_times(success: torch.Tensor, dt: float) -> torch.Tensor:
    """Per target, the time [s] from which it stays reached to its period's end: ``success``
    [S, N] is 0/1 at each of the period's S steps of every arm (the task's ``success`` info:
    within the radius, and for pose targets within 5 deg), all periods starting together; nan
    where the last step is not within. Timed as ``time_to_reach`` is (the step's end, ``dt``
    [s] a step), and never earlier than it: a target entered, left and entered again counts
    from its last entry."""
    steps = success.shape[0]
    outside = success < 0.5
    index = torch.arange(1, steps + 1, device=success.device).unsqueeze(-1).expand_as(outside)
    last_outside = torch.where(outside, index, torch.zeros_like(index)).amax(0)
    return torch.where(outside[-1], torch.full_like(success[-1], math.nan),
                       (last_outside + 1).to(success.dtype) * dt)


def _link_separation():
    """``self_collision.link_separation`` (torch (..., 7) -> (...,) m), or None without it."""
    try:
        from reach_rl_core.self_collision import link_separation
    except ImportError:
        return None
    return link_separation

CONDITIONS = {
    "nominal": RandomizationConfig(enabled=False),
    "lag 30 ms + latency 2 steps + noise 2 mrad": RandomizationConfig(
        enabled=True, actuator_tau_min=0.03, actuator_tau_max=0.03, latency_steps_min=2,
        latency_steps_max=2, joint_pos_noise=0.002, joint_vel_noise=0.02),
}


# Task keys that files written before the filter only clamped the goal still carry: the
# stop-time speed cap and the rate of the 1 kHz stream training mirrored. Dropped: a file's
# graph applies the limits it was trained under itself.
RETIRED_TASK_KEYS = ("max_stop_time", "control_rate")


def config_of(policy: Policy) -> TrainConfig:
    """The training config stored in the policy file (defaults where it says nothing), its
    target type and orientation range those of the file's metadata."""
    info = policy.info
    stored = {k: v for k, v in info.train_config.items() if k in ("task", "reward")}
    task = stored.get("task") if isinstance(stored.get("task"), dict) else {}
    stored["task"] = dict({k: v for k, v in task.items() if k not in RETIRED_TASK_KEYS},
                          target=info.target_type, down_cone=info.down_cone)
    return config_from([(stored, info.path)])


def onnx_actor(policy: Policy) -> Callable[[torch.Tensor], torch.Tensor]:
    """Observation [N, obs_dim] -> joint velocity command [N, 7] rad/s, through onnxruntime."""
    target_type = policy.info.target_type

    def act(obs: torch.Tensor) -> torch.Tensor:
        signals = {name: x.cpu().numpy()
                   for name, x in zip(input_names(target_type), split_obs(obs, target_type))}
        return torch.from_numpy(policy.run_batch(**signals)).to(obs.device)

    return act


def run_condition(act: Callable[[torch.Tensor], torch.Tensor], cfg: TrainConfig,
                  randomization: RandomizationConfig, num_targets: int, seed: int,
                  device="cpu", num_envs: int = 250, in_a_row: int = 0) -> Dict[str, float]:
    """Success rate, final-error and time-to-reach statistics over ``num_targets`` targets,
    and the smallest joint-limit distance [rad] (and link separation [m]) over the run: one
    :class:`HeldOutRun` of ``act``."""
    return HeldOutRun(cfg, randomization, num_targets, seed, device, num_envs, in_a_row)(act)


class HeldOutRun:
    """The held-out targets of one condition, to judge policies on again and again.

    Called with ``act``, it returns :func:`run_condition`'s figures. ``act`` maps observations
    to joint velocity commands [N, 7] rad/s (the policy file's output), so the same held-out
    targets can judge an ONNX file or a policy in training. ``in_a_row`` > 0: that many targets
    per arm (``ceil(num_targets / in_a_row)`` arms), else ``num_envs`` arms share the targets.
    Always in the built-in simulator, whichever arm simulator ``cfg`` trained on: every policy
    meets the same judge. Every run starts from the same seed: the same targets and start poses.

    ``cuda_graph`` on a CUDA device: each target period (policy and task steps) runs as one CUDA
    graph, recorded in the first run and replayed after (:mod:`reach_rl_train.cuda_graph`): a few
    hundred arms give kernels too small to keep a GPU busy, their launches set the time. ``act``
    must then be the same torch function at every run, on tensors that stay put (a model's
    weights, changed in place by training).

    After a call, ``ended`` holds each judged target's results (:func:`select_results`' keys,
    1-D arrays in target order: period by period, arm by arm).
    """

    def __init__(self, cfg: TrainConfig, randomization: RandomizationConfig, num_targets: int,
                 seed: int, device="cpu", num_envs: int = 250, in_a_row: int = 0,
                 cuda_graph: bool = False):
        if in_a_row > 0:
            num_envs = int(math.ceil(num_targets / in_a_row))
        num_envs = min(num_envs, num_targets)
        self.per_env = in_a_row if in_a_row > 0 else int(math.ceil(num_targets / num_envs))
        self.cfg, self.num_targets, self.seed = cfg, num_targets, seed
        task_cfg = replace(cfg.task, targets_per_episode=self.per_env, backend="torch")
        self.task = task = ReachTask(task_cfg, cfg.reward, randomization, num_envs, device,
                                     seed=seed)
        self.separation = _link_separation()
        # (minima kept on the device: no wait for it inside the run)
        self.limit_min = torch.full((7,), math.inf, device=task.device)
        self.sep_min = torch.tensor(math.inf, device=task.device)
        self.obs = task.reset()
        self.graphed = cuda_graph and task.device.type == "cuda"
        self.carry = StateCarry([(self, ("obs",))] + task.state_holders() if self.graphed else [])
        self.period = CapturedCall(self._period, task.device if self.graphed else "cpu",
                                   [task.generator])
        self.act = None  # type: Optional[Callable[[torch.Tensor], torch.Tensor]]
        self.ended = {}  # type: Dict[str, np.ndarray]

    def _period(self) -> Tuple[List[Dict[str, torch.Tensor]], List[torch.Tensor]]:
        """One target period of every arm from ``self.obs``: the steps' infos and dones."""
        task, scale, inf = self.task, self.task.action_scale, math.inf
        infos, dones = [], []  # type: List[Dict[str, torch.Tensor]], List[torch.Tensor]
        for _ in range(task.steps_per_target):
            self.obs, _, done, info = task.step(self.act(self.obs) / scale)
            infos.append(info)
            dones.append(done)
            # The run's last step resets the arms: their new poses are not the run's.
            q = task.backend.joint_pos
            limit = torch.where(done.unsqueeze(-1), inf,
                                limit_distance(q, task.pos_min, task.pos_max))
            self.limit_min.copy_(torch.min(self.limit_min, limit.min(0).values))
            if self.separation is not None:
                separation = torch.where(done, inf, self.separation(q))
                self.sep_min.copy_(torch.min(self.sep_min, separation.min()))
        self.carry.store()
        return infos, dones

    def __call__(self, act: Callable[[torch.Tensor], torch.Tensor]) -> Dict[str, float]:
        if self.graphed and self.act is not None and act != self.act:  # (!=: bound methods)
            raise ValueError("a graphed HeldOutRun replays the policy it recorded: "
                             "pass the same act")
        self.act = act
        task = self.task
        task.generator.manual_seed(self.seed)
        self.obs = task.reset()
        self.carry.store()
        self.limit_min.fill_(math.inf)
        self.sep_min.fill_(math.inf)
        periods = []
        with torch.no_grad():
            for _ in range(self.per_env):
                infos, dones = self.period()
                results = select_results(infos, dones)  # (before the next replay)
                results["time_held"] = held_times(torch.stack([i["success"] for i in infos]),
                                                  task.dt)
                periods.append(results)
        self.ended = {key: torch.cat([p[key] for p in periods]).cpu().numpy()[:self.num_targets]
                      for key in periods[0] if key != "episode_return"}
        return self._figures(self.ended)

    def _figures(self, ended: Dict[str, np.ndarray]) -> Dict[str, float]:
        """run_condition's figures of the ended targets' results ``ended`` (select_results')."""
        error = ended["final_error"]
        limit_min = self.limit_min.cpu()
        result = {
            "targets": int(len(error)),
            "in_a_row": self.per_env,
            "success_rate": float(np.mean(ended["success"])),  # the task's judgement
            "median_final_error_mm": float(1000 * np.median(error)),
            "p95_final_error_mm": float(1000 * np.percentile(error, 95)),
            TIME_KEY[self.cfg.task.target]: median_time(ended["time_to_reach"]),
            HELD_KEY: median_time(ended["time_held"]),
            "min_limit_distance_rad": float(limit_min.min()),
            "min_limit_distance_joint": int(limit_min.argmin()) + 1,
        }
        if "final_orientation_error" in ended:  # pose targets
            angle = np.degrees(ended["final_orientation_error"])
            result["median_final_orientation_error_deg"] = float(np.median(angle))
            result["p95_final_orientation_error_deg"] = float(np.percentile(angle, 95))
        if self.separation is not None:
            result["min_link_separation_m"] = float(self.sep_min)
        return result


def evaluate_file(path: str, num_targets: int = EVAL_DEFAULTS.eval_targets,
                  seed: int = EVAL_DEFAULTS.eval_seed,
                  in_a_row: int = EVAL_DEFAULTS.eval_in_a_row) -> Dict[str, Dict]:
    """Every condition of ``CONDITIONS`` for the policy file at ``path``, ``in_a_row`` targets
    per arm."""
    policy = Policy(path, threads=0)
    cfg = config_of(policy)
    results = {"policy": path, "robot": policy.info.robot, "target_type": cfg.task.target,
               "down_cone": cfg.task.down_cone}  # type: Dict
    for name, randomization in CONDITIONS.items():
        results[name] = run_condition(onnx_actor(policy), cfg, randomization, num_targets, seed,
                                      in_a_row=in_a_row)
    return results


def median_final_error_mm(path: str, num_targets: int = 250, seed: int = 777) -> float:
    """The policy file's median final TCP error [mm] over ``num_targets`` held-out targets, one
    per arm from the start pose, without randomisation: the quick measure of whether a short
    training learned (the tests' and bench/seed_spread.py's)."""
    policy = Policy(path)
    return run_condition(onnx_actor(policy), config_of(policy), CONDITIONS["nominal"], num_targets,
                         seed=seed)["median_final_error_mm"]


def format_results(results: Dict) -> str:
    target_type = results.get("target_type", POINT)
    pose = target_type == POSE
    lines = ["policy %s (%s%s)" % (results["policy"], results["robot"],
                                   ", pose targets, down cone %.3f rad" % results["down_cone"]
                                   if pose else "")]
    for name in CONDITIONS:
        r = results[name]
        sep = (", link separation >= %.1f mm" % (1000 * r["min_link_separation_m"])
               if "min_link_separation_m" in r else "")
        timing = ("orientation error median %.2f deg, p95 %.2f deg | "
                  % (r["median_final_orientation_error_deg"], r["p95_final_orientation_error_deg"])
                  if pose else "")
        timing += "median time to %s %.2f s (held from %.2f s)" % (
            tolerance(target_type), r[TIME_KEY[target_type]], r[HELD_KEY])
        lines.append("%-45s success %5.1f%% (%d targets, %d in a row) | final error median %.1f mm, "
                     "p95 %.1f mm | %s | joints >= %.3f rad from limits (joint %d)%s"
                     % (name + ":", 100 * r["success_rate"], r["targets"], r["in_a_row"],
                        r["median_final_error_mm"], r["p95_final_error_mm"], timing,
                        r["min_limit_distance_rad"], r["min_limit_distance_joint"], sep))
    return "\n".join(lines)
