"""Held-out evaluation during training, and the goal that ends it (``run.until_goal``).

Every ``goal.eval_every`` iterations the runner judges the policy being trained exactly as
``reach-rl-eval`` judges a policy file (:func:`reach_rl_train.evaluate.run_condition`, nominal
conditions, targets of a seed training never uses), on the training device, with the command
the policy file sends (:meth:`ActorCritic.command`). Training stops once :class:`Goal` is met and exports the
best policy seen.
"""
import time
from typing import Dict, NamedTuple, Optional

import torch

from reach_rl_train.config import (INTERFACE_DEFAULT, RandomizationConfig, TrainConfig,
                                   task_filter_limits)
from reach_rl_train.evaluate import HeldOutRun

NOMINAL = RandomizationConfig(enabled=False)
# s, the median time to 1 cm a goal asks for by default (0: none). On ros2_control the deploy
# node's stop-time speed cap sets how fast the arm can reach, whatever the policy learned.
INTERFACE_TIME_GOAL = {"libfranka": 1.0, "ros2_control": 0.0}


class Goal(NamedTuple):
    """Success share, median final error [mm] and median time to 1 cm [s] (0: not judged)."""

    success: float
    median_error_mm: float
    median_time_s: float

    @classmethod
    def of(cls, cfg: TrainConfig) -> "Goal":
        g = cfg.goal
        time_s = (INTERFACE_TIME_GOAL[cfg.task.interface] if g.median_time_s == INTERFACE_DEFAULT
                  else g.median_time_s)
        return cls(g.success, g.median_error_mm, time_s)

    def met(self, m: Dict[str, float]) -> int:
        """How many of the goal's criteria the figures ``m`` meet (an unjudged time counts)."""
        return ((m["success_rate"] >= self.success) + (m["median_final_error_mm"] <= self.median_error_mm)
                + (self.median_time_s == 0.0 or m["median_time_to_1cm_s"] <= self.median_time_s))

    def reached(self, m: Dict[str, float]) -> bool:
        return self.met(m) == 3

    def __str__(self) -> str:
        time_part = ", median time to 1 cm <= %.2f s" % self.median_time_s if self.median_time_s else ""
        return "success >= %.1f%%, median final error <= %.1f mm%s" % (
            100 * self.success, self.median_error_mm, time_part)


def better(a: Dict[str, float], b: Optional[Dict[str, float]], goal: Goal) -> bool:
    """Is evaluation ``a`` better than ``b``: more of ``goal``'s criteria met, then higher
    success, then lower median final error, then (when the goal judges it) shorter time?"""
    if b is None:
        return True

    def rank(m):
        time_s = m["median_time_to_1cm_s"] if goal.median_time_s else 0.0
        return goal.met(m), m["success_rate"], -m["median_final_error_mm"], -time_s

    return rank(a) > rank(b)


def describe(m: Dict[str, float]) -> str:
    """One line of held-out figures."""
    return ("%.1f%% | %.2f mm | %.2f s to 1 cm" % (100 * m["success_rate"],
                                                   m["median_final_error_mm"],
                                                   m["median_time_to_1cm_s"]))


class HeldOutEvaluator:
    """Judges an ActorCritic on the held-out targets of ``cfg.goal``, on ``device``, in the
    built-in simulator whatever arm simulator trains (as reach-rl-eval judges files).

    It keeps one :class:`reach_rl_train.evaluate.HeldOutRun` for the model it judges: on a GPU
    (``run.cuda_graph``, the built-in simulator training) that run replays CUDA graphs, so
    held-out figures are cheap to have often."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg = cfg
        self.device = device
        self.goal = Goal.of(cfg)
        self.limits = task_filter_limits(cfg.task)
        self.model = None  # type: Optional[torch.nn.Module]
        self.run = None  # type: Optional[HeldOutRun]

    def __call__(self, model) -> Dict[str, float]:
        """Held-out figures of ``model`` (``run_condition``'s keys) and ``eval_s``, the seconds
        the evaluation took."""
        start = time.perf_counter()
        if model is not self.model:
            g = self.cfg.goal
            self.model = model
            # (no capture beside Isaac Gym, whose simulation shares the device outside torch)
            graphed = self.cfg.run.cuda_graph and self.cfg.task.backend == "torch"
            self.run = HeldOutRun(self.cfg, NOMINAL, g.eval_targets, g.eval_seed, self.device,
                                  in_a_row=g.eval_in_a_row, cuda_graph=graphed)
        m = self.run(self._act)
        m["eval_s"] = time.perf_counter() - start
        return m

    def _act(self, obs: torch.Tensor) -> torch.Tensor:
        t = self.cfg.task
        return self.model.command(obs, self.limits, t.action_scale, t.policy_dt,
                                  self.cfg.ppo.deterministic_command)
