"""Held-out evaluation during training, and the goal that ends it (``run.until_goal``).

Every ``goal.eval_every`` iterations the runner may judge the policy being trained exactly as
``reach-rl-eval`` judges a policy file (:func:`reach_rl_train.evaluate.run_condition`, targets
of a seed training never uses), on the training device, with the command the policy file sends
(:meth:`ActorCritic.command`). A full judgement runs both of ``reach-rl-eval``'s conditions,
nominal and under lag, latency and noise, and its figures are the worse of the two
(:func:`worse_of`): the goal holds in both or not at all. :class:`GoalJudge` decides when, and
screens cheaply first (nominal only); training stops once :class:`Goal` is met on every held-out
target and exports the best policy judged. Pose targets (``task.target: pose``) are judged
on the orientation too: success within 1 cm and 5 deg, the median final orientation error, the
median time to both. The goal's time is the held time (evaluate.HELD_KEY): from when each
target stays reached to its period's end, so a hand that enters the tolerance and overshoots out
of it again is not counted as arrived.
"""
import copy
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch

from reach_rl_core.filter_limits import LIBFRANKA, ROS2_CONTROL
from reach_rl_train.config import (INTERFACE_DEFAULT, RandomizationConfig, TrainConfig,
                                   action_scales, task_filter_limits)
from reach_rl_train.evaluate import CONDITIONS, HELD_KEY, TIME_KEY, HeldOutRun, tolerance
from reach_rl_train.pose_target import POINT, POSE

NOMINAL = RandomizationConfig(enabled=False)
ORIENTATION_KEY = "median_final_orientation_error_deg"  # pose targets' figure
# The goal's figures, each with the choice that makes a figure the worse of two (those of pose
# targets where the figures have them).
GOAL_FIGURES = (("success_rate", min), ("median_final_error_mm", max),
                ("median_time_to_1cm_s", max), (ORIENTATION_KEY, max),
                (TIME_KEY[POSE], max), (HELD_KEY, max))


def worse_of(figures: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """The first condition's figures with each goal figure replaced by the worst over all
    ``figures`` (lowest success, largest median errors and time); every condition's own goal
    figures kept as ``<condition index>_<key>``."""
    m = dict(figures[0])
    for key, worse in GOAL_FIGURES:
        if key not in m:
            continue
        m[key] = worse(f[key] for f in figures)
        for i, f in enumerate(figures):
            m["condition%d_%s" % (i, key)] = f[key]
    return m


# s, the median time to success a goal asks for by default (goal.median_time_s -1; 0: none),
# per target type (point: to 1 cm, pose: to 1 cm and 5 deg) and deploy interface
# (reach_rl_core.filter_limits.INTERFACES): the same on both.
TIME_GOAL = {POINT: {ROS2_CONTROL: 1.0, LIBFRANKA: 1.0}, POSE: {ROS2_CONTROL: 1.2, LIBFRANKA: 1.2}}
INTERFACE_TIME_GOAL = TIME_GOAL[POINT]


class Goal(NamedTuple):
    """Success share, median final error [mm], median time to success [s] (0: not judged) and,
    for pose targets, median final orientation error [deg]."""

    success: float
    median_error_mm: float
    median_time_s: float
    median_orientation_deg: float = 0.0  # pose targets only
    target_type: str = POINT

    @classmethod
    def of(cls, cfg: TrainConfig) -> "Goal":
        g, target_type = cfg.goal, cfg.task.target
        time_s = (TIME_GOAL[target_type][cfg.task.interface]
                  if g.median_time_s == INTERFACE_DEFAULT else g.median_time_s)
        orientation = g.median_orientation_error_deg if target_type == POSE else 0.0
        return cls(g.success, g.median_error_mm, time_s, orientation, target_type)

    @property
    def time_key(self) -> str:
        """The figure the time criterion reads: the held time, for both target types."""
        return HELD_KEY

    @property
    def criteria(self) -> int:
        return 4 if self.target_type == POSE else 3

    def met(self, m: Dict[str, float]) -> int:
        """How many of the goal's criteria the figures ``m`` meet (an unjudged time counts)."""
        met = ((m["success_rate"] >= self.success) + (m["median_final_error_mm"] <= self.median_error_mm)
               + (self.median_time_s == 0.0 or m[self.time_key] <= self.median_time_s))
        if self.target_type == POSE:
            met += m[ORIENTATION_KEY] <= self.median_orientation_deg
        return met

    def reached(self, m: Dict[str, float]) -> bool:
        return self.met(m) == self.criteria

    def loosened(self, slack: float) -> "Goal":
        """This goal with each criterion loosened by the fraction ``slack``: success times
        ``1 - slack``, median errors and time times ``1 + slack``."""
        return self._replace(success=self.success * (1.0 - slack),
                             median_error_mm=self.median_error_mm * (1.0 + slack),
                             median_time_s=self.median_time_s * (1.0 + slack),
                             median_orientation_deg=self.median_orientation_deg * (1.0 + slack))

    def __str__(self) -> str:
        within = tolerance(self.target_type)
        time_part = (", median time from which %s holds <= %.2f s" % (within, self.median_time_s)
                     if self.median_time_s else "")
        if self.target_type == POSE:
            return ("success >= %.1f%% (%s), median final error <= %.1f mm, median "
                    "orientation error <= %.1f deg%s" % (100 * self.success, within,
                                                        self.median_error_mm,
                                                        self.median_orientation_deg, time_part))
        return "success >= %.1f%%, median final error <= %.1f mm%s" % (
            100 * self.success, self.median_error_mm, time_part)


def better(a: Dict[str, float], b: Optional[Dict[str, float]], goal: Goal) -> bool:
    """Is evaluation ``a`` better than ``b``: more of ``goal``'s criteria met, then higher
    success, then lower median final error, then (when the goal judges it) shorter time?"""
    if b is None:
        return True

    def rank(m):
        time_s = m[goal.time_key] if goal.median_time_s else 0.0
        orientation = m[ORIENTATION_KEY] if goal.target_type == POSE else 0.0
        return goal.met(m), m["success_rate"], -m["median_final_error_mm"], -orientation, -time_s

    return rank(a) > rank(b)


def target_type_of(m: Dict[str, float]) -> str:
    """The target type held-out figures ``m`` are of: pose where they have an orientation."""
    return POSE if ORIENTATION_KEY in m else POINT


def describe(m: Dict[str, float]) -> str:
    """One line of held-out figures (pose targets: with the orientation's): success, median
    errors, median time to the first step within the tolerance and from which it holds."""
    target_type = target_type_of(m)
    orientation = " | %.2f deg" % m[ORIENTATION_KEY] if target_type == POSE else ""
    return ("%.1f%% | %.2f mm%s | %.2f s to %s, held from %.2f s"
            % (100 * m["success_rate"], m["median_final_error_mm"], orientation,
               m[TIME_KEY[target_type]], tolerance(target_type), m[HELD_KEY]))


class HeldOutEvaluator:
    """Judges an ActorCritic on ``num_targets`` (default ``cfg.goal.eval_targets``) held-out
    targets of ``cfg.goal``, on ``device``, in the built-in simulator whatever arm simulator
    trains (as reach-rl-eval judges files), under each of ``conditions`` (the worse figures,
    :func:`worse_of`).

    It keeps one :class:`reach_rl_train.evaluate.HeldOutRun` per condition for the model it judges: on a GPU
    (``run.cuda_graph``, the built-in simulator training; :attr:`graphed`) that run replays
    CUDA graphs, so held-out figures are cheap to have often."""

    def __init__(self, cfg: TrainConfig, device: torch.device, num_targets: int = 0,
                 conditions: Sequence[RandomizationConfig] = (NOMINAL,)):
        self.cfg = cfg
        self.conditions = tuple(conditions)
        self.device = torch.device(device)
        self.num_targets = num_targets or cfg.goal.eval_targets
        self.goal = Goal.of(cfg)
        self.limits = task_filter_limits(cfg.task)
        # (no capture beside Isaac Gym, whose simulation shares the device outside torch)
        self.graphed = (cfg.run.cuda_graph and cfg.task.backend == "torch"
                        and self.device.type == "cuda")
        self.model = None  # type: Optional[torch.nn.Module]
        self.runs = []  # type: List[HeldOutRun]

    def __call__(self, model) -> Dict[str, float]:
        """Held-out figures of ``model`` (``run_condition``'s keys) and ``eval_s``, the seconds
        the evaluation took."""
        start = time.perf_counter()
        if model is not self.model:
            g = self.cfg.goal
            self.model = model
            self.runs = [HeldOutRun(self.cfg, condition, self.num_targets, g.eval_seed,
                                    self.device, in_a_row=g.eval_in_a_row,
                                    cuda_graph=self.graphed)
                         for condition in self.conditions]
        m = worse_of([run(self._act) for run in self.runs])
        m["eval_s"] = time.perf_counter() - start
        return m

    def _act(self, obs: torch.Tensor) -> torch.Tensor:
        t = self.cfg.task
        return self.model.command(obs, self.limits, action_scales(t), t.policy_dt,
                                  self.cfg.ppo.deterministic_command)


def prefixed(prefix: str, m: Dict[str, float]) -> Dict[str, float]:
    """Figures ``m`` as training statistics: keys with ``prefix``, values as floats."""
    return {prefix + k: float(v) for k, v in m.items()}


class GoalJudge:
    """When and how the runner judges its policy (``run.until_goal``), and the best it judged.

    At every ``goal.eval_every``-th iteration, unless it is the last (always judged in full):
    no judgement while the rollouts' success share (``stats["success"]``, free) is below
    ``goal.screen_train_success``; then, until one passes, a screen: ``goal.screen_targets``
    held-out targets against the goal loosened by ``goal.screen_slack``; from then on the full
    judge, every held-out target. Only a full judgement can meet the goal or be the best, whose
    weights are exported. No screen where evaluation runs as CUDA graphs: there a smaller
    run costs as much as the full one (their steps' launches set the time).
    A due judgement also waits while the judgements so far took more than ``goal.eval_share``
    of the training's wall time (on a CPU a full pose judgement costs as much as fifteen
    iterations). ``full`` and ``screen``: evaluators (model -> figures), built from ``cfg`` by
    default."""

    def __init__(self, cfg: TrainConfig, device: torch.device, full=None, screen=None):
        g = cfg.goal
        self.cfg = cfg
        self.goal = Goal.of(cfg)
        self.screen_goal = self.goal.loosened(g.screen_slack)
        self.full = (full if full is not None
                     else HeldOutEvaluator(cfg, device, conditions=tuple(CONDITIONS.values())))
        if (screen is None and 0 < g.screen_targets < g.eval_targets
                and not getattr(self.full, "graphed", False)):
            screen = HeldOutEvaluator(cfg, device, g.screen_targets)
        self.screen = screen
        self.screened = screen is None  # a screen passed (or none to pass)
        self.latest = None  # type: Optional[Dict[str, float]]  # the latest judgement, and:
        self.latest_kind = ""  # "screen" | "held-out"
        self.best = None  # type: Optional[Dict[str, float]]  # the best full judgement, its weights:
        self.best_state = None  # type: Optional[Dict[str, torch.Tensor]]
        self.reached = False
        self.eval_s = 0.0  # s, every judgement's own time

    def __call__(self, model, iteration: int, last: bool, stats: Dict[str, float]) -> bool:
        """Judge ``model`` after ``iteration`` when due, adding ``screen_*`` or ``held_out_*``
        figures to ``stats`` (the runner's: ``success``, the rollouts' success share, and
        ``wall_s``, the seconds training has run); True when a full judgement meets the goal."""
        g = self.cfg.goal
        if not (iteration % g.eval_every == 0 or last):
            return False
        if not last and (stats.get("success", 0.0) < g.screen_train_success
                         or self.eval_s > g.eval_share * stats["wall_s"]):
            return False
        if not (self.screened or last):
            m = self._judge(self.screen, model, iteration, "screen", stats)
            self.screened = self.screen_goal.reached(m)
            if not self.screened:
                return False
        m = self._judge(self.full, model, iteration, "held-out", stats)
        if better(m, self.best, self.goal):
            self.best = self.latest
            self.best_state = copy.deepcopy(model.state_dict())
        self.reached = self.goal.reached(m)
        return self.reached

    def _judge(self, evaluator, model, iteration: int, kind: str, stats) -> Dict[str, float]:
        m = evaluator(model)
        self.eval_s += m["eval_s"]
        self.latest, self.latest_kind = dict(m, iteration=iteration), kind
        stats.update(prefixed(kind.replace("-", "_") + "_", m))
        return m

    def describe_latest(self) -> str:
        """`` | held-out <figures> (it N)`` (or `` | screen ...``) of the latest, or ''."""
        if self.latest is None:
            return ""
        return " | %s %s (it %d)" % (self.latest_kind, describe(self.latest),
                                     self.latest["iteration"])

    def report(self, iteration: int, wall_s: float) -> Optional[str]:
        """The line that says how training ended after ``iteration`` and ``wall_s`` s, or None
        when nothing was judged in full."""
        if self.reached:
            return ("goal reached at iteration %d after %.1f s (%.1f s of it held-out "
                    "evaluation): %s (goal: %s)" % (iteration, wall_s, self.eval_s,
                                                    describe(self.latest), self.goal))
        if self.best is None:
            return None
        return ("goal (%s) not reached in %d iterations, %.1f s; exporting the best, iteration "
                "%d: %s" % (self.goal, iteration, wall_s, self.best["iteration"],
                            describe(self.best)))
