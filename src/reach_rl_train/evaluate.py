"""Evaluate a policy file on held-out targets in the built-in simulator, through onnxruntime.

A target counts as reached (success) when the TCP is within ``success_radius`` (1 cm) of
it when its period (3 s) ends. Each condition runs the same held-out targets.
"""
import math
from dataclasses import replace
from typing import Callable, Dict, List

import numpy as np
import torch

from reach_rl_deploy.policy_file import INPUT_SHAPES, Policy
from reach_rl_train.actor_critic import split_obs
from reach_rl_train.config import RandomizationConfig, TrainConfig, apply_dict, validate
from reach_rl_train.reach_task import ReachTask

CONDITIONS = {
    "nominal": RandomizationConfig(enabled=False),
    "lag 30 ms + latency 2 steps + noise 2 mrad": RandomizationConfig(
        enabled=True, actuator_tau_min=0.03, actuator_tau_max=0.03, latency_steps_min=2,
        latency_steps_max=2, joint_pos_noise=0.002, joint_vel_noise=0.02),
}


def config_of(policy: Policy) -> TrainConfig:
    """The training config stored in the policy file (defaults where it says nothing)."""
    cfg = TrainConfig()
    stored = dict(policy.info.train_config)
    apply_dict(cfg, {k: v for k, v in stored.items() if k in ("task", "reward")}, policy.info.path)
    validate(cfg)
    return cfg


def onnx_actor(policy: Policy) -> Callable[[torch.Tensor], torch.Tensor]:
    """Observation [N, OBS_DIM] -> joint velocity command [N, 7] rad/s, through onnxruntime."""
    def act(obs: torch.Tensor) -> torch.Tensor:
        signals = {name: x.cpu().numpy() for name, x in zip(INPUT_SHAPES, split_obs(obs))}
        return torch.from_numpy(policy.run_batch(**signals)).to(obs.device)

    return act


def run_condition(act: Callable[[torch.Tensor], torch.Tensor], cfg: TrainConfig,
                  randomization: RandomizationConfig, num_targets: int, seed: int,
                  device="cpu", num_envs: int = 250) -> Dict[str, float]:
    """Success rate, final-error and time-to-reach statistics over ``num_targets`` targets.

    ``act`` maps observations to joint velocity commands [N, 7] rad/s (the policy file's
    output), so the same held-out targets can judge an ONNX file or a policy in training.
    """
    num_envs = min(num_envs, num_targets)
    per_env = int(math.ceil(num_targets / num_envs))
    task_cfg = replace(cfg.task, targets_per_episode=per_env)
    task = ReachTask(task_cfg, cfg.reward, randomization, num_envs, device, seed=seed)
    obs = task.reset()
    errors, times = [], []  # type: List[torch.Tensor], List[torch.Tensor]
    with torch.no_grad():
        for _ in range(task.max_episode_steps):
            obs, _, _, info = task.step(act(obs) / cfg.task.action_scale)
            errors.append(info["final_error"])
            times.append(info["time_to_reach"])
    error = torch.cat(errors).cpu().numpy()[:num_targets]
    time_to_reach = torch.cat(times).cpu().numpy()[:num_targets]
    reached = np.where(np.isnan(time_to_reach), np.inf, time_to_reach)
    return {
        "targets": int(len(error)),
        "success_rate": float(np.mean(error < cfg.task.success_radius)),
        "median_final_error_mm": float(1000 * np.median(error)),
        "p95_final_error_mm": float(1000 * np.percentile(error, 95)),
        "median_time_to_1cm_s": float(np.median(reached)),
    }


def evaluate_file(path: str, num_targets: int = 1000, seed: int = 12345) -> Dict[str, Dict]:
    """Every condition of ``CONDITIONS`` for the policy file at ``path``."""
    policy = Policy(path, threads=0)
    cfg = config_of(policy)
    results = {"policy": path, "robot": policy.info.robot}  # type: Dict
    for name, randomization in CONDITIONS.items():
        results[name] = run_condition(onnx_actor(policy), cfg, randomization, num_targets, seed)
    return results


def format_results(results: Dict) -> str:
    lines = ["policy %s (%s)" % (results["policy"], results["robot"])]
    for name in CONDITIONS:
        r = results[name]
        lines.append("%-45s success %5.1f%% (%d targets) | final error median %.1f mm, p95 %.1f mm"
                     " | median time to 1 cm %.2f s"
                     % (name + ":", 100 * r["success_rate"], r["targets"], r["median_final_error_mm"],
                        r["p95_final_error_mm"], r["median_time_to_1cm_s"]))
    return "\n".join(lines)
