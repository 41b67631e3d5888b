"""Training benchmark: simulator throughput, our PPO and rsl_rl's PPO to the same goal.

Prints (and writes to ``--json``):

1. simulator alone: env-steps/s of ``TorchArmSim.step`` and of the full ``ReachTask.step``
   (random actions, no policy);
2. our PPO (``Runner``) from ``config/train.yaml``: evaluated deterministically (the command
   its policy file sends) every ``--eval-every`` iterations on 1000 held-out targets (nominal
   condition), timed to the goal of the resolved config (``held_out.Goal.of``; point targets:
   success >= 99 %, median final error <= 2 mm, median time to 1 cm <= 1.0 s; pose targets,
   ``--override task.target=pose``: success within 1 cm and 5 deg, also the median orientation
   error, and the time to both) with evaluation time excluded; the exported ONNX file is then
   evaluated through onnxruntime;
3. rsl_rl's PPO on the same task (``bench/rsl_rl_env.py``), timed the same way, judged on its
   own inference policy (the Gaussian's mean), in two rows (``--rsl-rl-settings``):
   ``rsl_rl`` with rsl_rl's own recommended schedule (its PPO's defaults: adaptive, desired KL
   0.01, its epochs and minibatches) and ``rsl_rl_ours`` configured like ours.

Run from the repository root, e.g.::

    PYTHONPATH=src:bench python bench/train_bench.py --device cuda --num-envs 4096

Times: "from start" counts from the moment the trainer's construction begins (task, model,
runner), "train" from the end of construction; both exclude evaluation time.
"""
import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

# rsl_rl's logger imports GitPython, which refuses to import without a git executable.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import torch  # noqa: E402

from reach_rl_core import franka_model  # noqa: E402
from reach_rl_core.filter_limits import LIBFRANKA  # noqa: E402
from reach_rl_train.arm_sim import TorchArmSim  # noqa: E402
from reach_rl_train.cli import default_config_path  # noqa: E402
from reach_rl_train.config import (TrainConfig, action_scales, load_config,  # noqa: E402
                                   task_filter_limits)
from reach_rl_train.cuda_graph import CapturedCall, StateCarry  # noqa: E402
from reach_rl_train.evaluate import (CONDITIONS, HELD_KEY, TIME_KEY, HeldOutRun,  # noqa: E402
                                     evaluate_file, run_condition, tolerance)
from reach_rl_train.held_out import ORIENTATION_KEY, Goal, better, target_type_of  # noqa: E402
from reach_rl_train.pose_target import POSE  # noqa: E402
from reach_rl_train.reach_task import ReachTask  # noqa: E402

MILESTONE_SUCCESS = 0.95
GRAPH_STEPS = 24  # ReachTask.step calls per CUDA graph in the simulator figures (a rollout's)
EVAL_TARGETS = 1000
EVAL_SEED = 12345


def log(*args) -> None:
    print(*args, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fmt_metrics(m: Optional[Dict[str, float]]) -> str:
    if not m:
        return "-"
    target_type = target_type_of(m)
    orientation = ("median orientation %5.2f deg | " % m[ORIENTATION_KEY]
                   if target_type == POSE else "")
    return ("success %5.1f%% | median error %6.2f mm | p95 %6.1f mm | %smedian t(%s) %5.2f s, "
            "held from %5.2f s"
            % (100 * m["success_rate"], m["median_final_error_mm"], m["p95_final_error_mm"],
               orientation, tolerance(target_type), m[TIME_KEY[target_type]], m[HELD_KEY]))


def fmt_short(m: Optional[Dict[str, float]]) -> str:
    if not m:
        return "-"
    target_type = target_type_of(m)
    orientation = ", %.2f deg" % m[ORIENTATION_KEY] if target_type == POSE else ""
    return "%.1f%%, %.2f mm%s, %.2f s (held %.2f s)" % (
        100 * m["success_rate"], m["median_final_error_mm"], orientation,
        m[TIME_KEY[target_type]], m[HELD_KEY])


def goal_text(goal: Goal, sep: str = ", ") -> str:
    """``goal``'s criteria, joined by ``sep``."""
    pose = goal.target_type == POSE
    within = " (%s)" % tolerance(POSE) if pose else ""
    parts = ["success >= %.0f%%%s" % (100 * goal.success, within),
             "median final error <= %.1f mm" % goal.median_error_mm]
    if pose:
        parts.append("median orientation error <= %.1f deg" % goal.median_orientation_deg)
    if goal.median_time_s:
        parts.append("median time from which %s holds <= %.1f s"
                     % (tolerance(goal.target_type), goal.median_time_s))
    return sep.join(parts)


# -- 1. simulator alone ---------------------------------------------------------------------
def time_steps(step: Callable[[int], None], device: torch.device, warmup: int,
               min_seconds: float, min_steps: int = 20) -> Dict[str, float]:
    """Run ``step(i)`` ``warmup`` times, then time it for at least ``min_seconds``."""
    for i in range(warmup):
        step(i)
    sync(device)
    steps = 0
    chunk = 10
    start = time.perf_counter()
    while True:
        for i in range(chunk):
            step(steps + i)
        steps += chunk
        sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and steps >= min_steps:
            return {"steps": steps, "seconds": elapsed}
        chunk = min(chunk * 2, 1000)


def bench_simulator(cfg: TrainConfig, device: torch.device, sizes: List[int],
                    seconds: float) -> List[Dict]:
    results = []
    limits = franka_model.joint_limits(cfg.task.robot)
    for n in sizes:
        row = {"num_envs": n}  # type: Dict
        g = torch.Generator(device=device).manual_seed(0)
        pool = 16
        # TorchArmSim.step: random velocity commands, per-arm lags as in training randomisation.
        sim = TorchArmSim(n, limits, device)
        ids = torch.arange(n, device=device)
        q0 = torch.tensor(franka_model.READY_POSE, dtype=torch.float32, device=device).expand(n, 7)
        sim.set_state(ids, q0, torch.zeros(n, 7, device=device))
        commands = [0.5 * (2 * torch.rand(n, 7, generator=g, device=device) - 1)
                    for _ in range(pool)]
        tau = cfg.randomization.actuator_tau_max * torch.rand(n, generator=g, device=device)
        dt = cfg.task.policy_dt

        def sim_step(i):
            sim.step(commands[i % pool], tau, dt)

        t = time_steps(sim_step, device, warmup=20, min_seconds=seconds)
        row["arm_sim_steps_per_s"] = n * t["steps"] / t["seconds"]
        # ReachTask.step: full task (limits, reward, target switches, resets, observation).
        task = ReachTask(cfg.task, cfg.reward, cfg.randomization, n, device, seed=0)
        task.reset(stagger=True)
        actions = [2 * torch.rand(n, 7, generator=g, device=device) - 1 for _ in range(pool)]

        def task_step(i):
            task.step(actions[i % pool])

        with torch.no_grad():
            t = time_steps(task_step, device, warmup=20, min_seconds=seconds)
        row["reach_task_steps_per_s"] = n * t["steps"] / t["seconds"]
        line = ("simulator %6d envs: TorchArmSim.step %12.0f env-steps/s | ReachTask.step "
                "%12.0f env-steps/s" % (n, row["arm_sim_steps_per_s"], row["reach_task_steps_per_s"]))
        if device.type == "cuda":
            # ... as training runs it on a GPU (run.cuda_graph): steps recorded, then replayed.
            carry = StateCarry(task.state_holders())

            def steps():
                for i in range(GRAPH_STEPS):
                    task.step(actions[i % pool])
                carry.store()

            graphed = CapturedCall(steps, device, [task.generator])
            with torch.no_grad():
                t = time_steps(lambda i: graphed(), device, warmup=3, min_seconds=seconds)
            row["reach_task_graph_steps_per_s"] = n * GRAPH_STEPS * t["steps"] / t["seconds"]
            line += " | in a CUDA graph %12.0f" % row["reach_task_graph_steps_per_s"]
        log(line)
        results.append(row)
        del sim, task, commands, actions
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


# -- timing and evaluation shared by both trainers ---------------------------------------------
class Tracker:
    """Clock that excludes evaluation time, evaluation history, milestones and the goal
    (``Goal.of(cfg)``: the config's, for its target type)."""

    def __init__(self, name: str, cfg: TrainConfig, device: torch.device, time_limit: float,
                 targets_in_a_row: int = 1, cuda_graph: bool = False):
        self.name, self.cfg, self.device, self.time_limit = name, cfg, device, time_limit
        self.goal = Goal.of(cfg)
        # 1: every held-out target from a start pose near the ready pose; 4: reach-rl-eval's
        # protocol, each arm gets 4 targets in a row, from wherever the previous one left it.
        self.eval_envs = EVAL_TARGETS // targets_in_a_row
        # cuda_graph: the held-out run replays graphs of the act it first got (as training's
        # own evaluator does); built at the first evaluation, whose time is not counted.
        self.cuda_graph = cuda_graph
        self.held_out = None  # type: Optional[HeldOutRun]
        self.t_start = time.perf_counter()  # construction begins
        self.t_train = self.t_start  # construction done (set by constructed())
        self.t_stop = None  # type: Optional[float]  # training stopped
        self.eval_seconds = 0.0
        self.evals = []  # type: List[Dict]
        self.best = None  # type: Optional[Dict]
        self.milestone = None  # type: Optional[Dict]
        self.goal_at = None  # type: Optional[Dict]  # the first evaluation that met the goal
        self.last_eval_iteration = -1

    def constructed(self) -> None:
        sync(self.device)
        self.t_train = time.perf_counter()
        log("[%s] constructed in %.2f s" % (self.name, self.t_train - self.t_start))

    def now(self) -> float:
        return self.t_stop if self.t_stop is not None else time.perf_counter()

    def stop(self) -> None:
        """Freeze the clocks: training is over (export, logs and final evaluations don't count)."""
        if self.t_stop is None:
            sync(self.device)
            self.t_stop = time.perf_counter()

    def from_start(self) -> float:
        return self.now() - self.t_start - self.eval_seconds

    def train_time(self) -> float:
        return self.now() - self.t_train - self.eval_seconds

    def over_time(self) -> bool:
        return self.from_start() >= self.time_limit

    def evaluate(self, act: Callable[[torch.Tensor], torch.Tensor], iteration: int,
                 env_steps: int, note: str = "") -> Dict:
        """Nominal evaluation of ``act`` (obs -> rad/s); its time is excluded from the clocks."""
        sync(self.device)
        t0 = time.perf_counter()
        point = {"iteration": iteration, "env_steps": env_steps,
                 "from_start_s": self.from_start(), "train_s": self.train_time()}
        with torch.no_grad():
            if self.held_out is None:
                self.held_out = HeldOutRun(self.cfg, CONDITIONS["nominal"], EVAL_TARGETS,
                                           EVAL_SEED, self.device, num_envs=self.eval_envs,
                                           cuda_graph=self.cuda_graph)
            m = self.held_out(act)
        sync(self.device)
        t1 = time.perf_counter()
        if self.t_stop is None:  # clocks frozen: nothing to exclude
            self.eval_seconds += t1 - t0
        point.update(m)
        point["eval_s"] = t1 - t0
        self.evals.append(point)
        self.last_eval_iteration = iteration
        if better(m, self.best, self.goal):
            self.best = point
        tags = []
        if self.milestone is None and m["success_rate"] >= MILESTONE_SUCCESS:
            self.milestone = point
            tags.append("FIRST >= 95%")
        if self.goal_at is None and self.goal.reached(m):
            self.goal_at = point
            tags.append("GOAL")
        log("[%s] eval it %5d | %11d steps | %7.1f s from start (%7.1f s training) | %s%s%s"
            % (self.name, iteration, env_steps, point["from_start_s"], point["train_s"],
               fmt_metrics(m), (" | " + ", ".join(tags)) if tags else "",
               (" | " + note) if note else ""))
        return point

    def summary(self, iterations: int, env_steps: int) -> Dict:
        train_s = self.train_time()
        return {
            "construct_s": self.t_train - self.t_start,
            "iterations": iterations,
            "env_steps": env_steps,
            "train_s": train_s,
            "from_start_s": self.from_start(),
            "eval_total_s": sum(p["eval_s"] for p in self.evals),
            "train_env_steps_per_s": env_steps / train_s if train_s > 0 else float("nan"),
            "goal": self.goal_at,
            "first_95": self.milestone,
            "best": self.best,
            "last_eval": self.evals[-1] if self.evals else None,
            "evals": self.evals,
            "time_limit_s": self.time_limit,
        }


# -- 2. our PPO ---------------------------------------------------------------------------------
def bench_ours(args, overrides: List[str], device: torch.device) -> Dict:
    from reach_rl_train.runner import Runner

    cfg = load_config(args.config or default_config_path(), overrides)
    tracker = Tracker("ours", cfg, device, args.time_limit, args.eval_in_a_row,
                      cuda_graph=cfg.run.cuda_graph)
    steps_per_iter = cfg.run.num_envs * cfg.ppo.num_steps
    last_line = [""]

    def progress(line: str) -> None:
        if line.startswith("it "):
            last_line[0] = line
        else:
            log("[ours] " + line)

    runner = Runner(cfg, progress=progress)
    tracker.constructed()
    limits, t = task_filter_limits(cfg.task), cfg.task

    def act(obs):  # the command the policy file sends
        return runner.model.command(obs, limits, action_scales(t), t.policy_dt,
                                    cfg.ppo.deterministic_command)

    def on_iteration(r, stats) -> bool:
        it = r.iteration
        if it % args.eval_every == 0:
            if last_line[0]:
                log("[ours] " + last_line[0])
            tracker.evaluate(act, it, it * steps_per_iter,
                             note="this iteration: rollout %.3g, rollout + update %.3g env-steps/s"
                             % (stats["collect_steps_per_s"], stats["steps_per_s"]))
            if tracker.goal_at is not None:
                tracker.stop()
                return True
        if tracker.over_time():
            tracker.stop()
            if tracker.last_eval_iteration != it:
                tracker.evaluate(act, it, it * steps_per_iter, note="time limit")
            return True
        return False

    runner.train(on_iteration=on_iteration)
    tracker.stop()  # (already stopped unless train() ended another way)
    result = tracker.summary(runner.iteration, runner.iteration * steps_per_iter)
    result["config"] = cfg.to_dict()
    result["policy_file"] = cfg.run.out
    t0 = time.perf_counter()
    try:
        result["onnx_eval"] = evaluate_file(cfg.run.out, EVAL_TARGETS)
        log("[ours] ONNX policy %s through onnxruntime (%.1f s):" % (cfg.run.out,
                                                                   time.perf_counter() - t0))
        for name in CONDITIONS:
            log("[ours]   %-45s %s" % (name + ":", fmt_metrics(result["onnx_eval"][name])))
    except Exception as exc:  # report, keep the benchmark's other figures
        result["onnx_eval_error"] = "%s: %s" % (type(exc).__name__, exc)
        log("[ours] ONNX evaluation failed: %s" % result["onnx_eval_error"])
        traceback.print_exc()
    return result


# -- 3. rsl_rl's PPO ----------------------------------------------------------------------------
def rsl_rl_unavailable() -> Optional[str]:
    """Why rsl_rl cannot be benchmarked here, or None."""
    try:
        import rsl_rl_env  # noqa: F401  (imports tensordict and rsl_rl's VecEnv)
        import rsl_rl.runners  # noqa: F401
    except Exception as exc:  # ImportError, or GitPython failing to initialise
        return "%s: %s" % (type(exc).__name__, exc)
    return None


def rsl_rl_version() -> str:
    try:
        from importlib.metadata import version

        return version("rsl-rl-lib")
    except Exception:
        return "unknown"


RSL_RL_ROWS = {"rsl_rl": "rsl_rl", "ours": "rsl_rl_ours"}  # settings -> report key


def bench_rsl_rl(args, overrides: List[str], device: torch.device, settings: str) -> Dict:
    """rsl_rl's PPO with ``settings`` "rsl_rl" (its own schedule) or "ours" (configured like ours)."""
    from rsl_rl.runners import OnPolicyRunner
    from tensordict import TensorDict

    from rsl_rl_env import ReachVecEnv, rsl_rl_train_cfg

    name = RSL_RL_ROWS[settings]
    cfg = load_config(args.config or default_config_path(), overrides)
    tracker = Tracker(name, cfg, device, args.rsl_rl_time_limit or args.time_limit,
                      args.eval_in_a_row)
    torch.manual_seed(cfg.run.seed)
    env = ReachVecEnv(cfg, device)
    train_cfg = rsl_rl_train_cfg(cfg, settings=settings)
    log_dir = os.path.join(args.out, name + "_logs") if args.rsl_rl_log else None
    runner = OnPolicyRunner(env, train_cfg, log_dir=log_dir, device=str(device))
    tracker.constructed()
    steps_per_iter = env.num_envs * cfg.ppo.num_steps
    scale = torch.tensor(action_scales(cfg.task), device=device)

    def inference_act():
        """obs -> rad/s through rsl_rl's inference policy (deterministic: the Gaussian's mean)."""
        policy = runner.get_inference_policy(device=str(device))  # switches to eval mode

        def act(obs):
            td = TensorDict({"policy": env.features(obs)}, batch_size=[obs.shape[0]],
                            device=obs.device)
            return policy(td).clamp(-1.0, 1.0) * scale

        return act

    iteration = 0
    while True:
        # One iteration per learn() call, so the time limit is checked as often as for ours;
        # learn() switches back to train mode and continues from env.get_observations().
        runner.learn(num_learning_iterations=1, init_at_random_ep_len=False)
        iteration += 1
        runner.current_learning_iteration = iteration
        if iteration % args.eval_every == 0:
            std = runner.alg.get_policy().output_std.mean().item()
            tracker.evaluate(inference_act(), iteration, iteration * steps_per_iter,
                             note="lr %.1e, std %.2f" % (runner.alg.learning_rate, std))
            if tracker.goal_at is not None:
                tracker.stop()
                break
        if tracker.over_time():
            tracker.stop()
            if tracker.last_eval_iteration != iteration:
                tracker.evaluate(inference_act(), iteration, iteration * steps_per_iter,
                                 note="time limit")
            break
    result = tracker.summary(iteration, iteration * steps_per_iter)
    result["rsl_rl_version"] = rsl_rl_version()
    result["settings"] = settings
    result["rsl_rl_cfg"] = train_cfg
    # Final policy in every condition, through torch (rsl_rl has no export to our policy format).
    t0 = time.perf_counter()
    final = {}
    act = inference_act()
    with torch.no_grad():
        for name, randomization in CONDITIONS.items():
            final[name] = run_condition(act, cfg, randomization, EVAL_TARGETS, EVAL_SEED,
                                        device=device, num_envs=EVAL_TARGETS)
    result["final_eval"] = final
    log("[%s] final policy through torch (%.1f s):" % (name, time.perf_counter() - t0))
    for condition in CONDITIONS:
        log("[%s]   %-45s %s" % (name, condition + ":", fmt_metrics(final[condition])))
    if log_dir:
        runner.save(os.path.join(log_dir, "model_final.pt"))
    return result


# -- report -------------------------------------------------------------------------------------
TRAINERS = ("ours", "rsl_rl", "rsl_rl_ours")  # report keys, in the table's order
TITLES = {"ours": "ours", "rsl_rl": "rsl_rl (its settings)", "rsl_rl_ours": "rsl_rl (ours)"}


def schedule_of(r: Dict) -> str:
    """The learning schedule a trainer's result ran with: rate, KL, epochs, minibatches."""
    if "rsl_rl_cfg" in r:
        a = r["rsl_rl_cfg"]["algorithm"]
        kl, rate, epochs, minibatches = (a["desired_kl"], a["learning_rate"],
                                         a["num_learning_epochs"], a["num_mini_batches"])
        adaptive = a["schedule"] == "adaptive"
    elif "config" in r:
        p = r["config"]["ppo"]
        kl, rate, epochs, minibatches = (p["desired_kl"], p["learning_rate"], p["num_epochs"],
                                         p["num_minibatches"])
        adaptive = kl > 0
    else:
        return "-"
    rate_text = ("adaptive to KL %g from %g" % (kl, rate) if adaptive else "fixed %g" % rate)
    return "lr %s, %d epochs, %d minibatches" % (rate_text, epochs, minibatches)


def side_by_side(report: Dict) -> List[str]:
    """One line per trainer: title, schedule, 95 % at, goal at (or the best), env-steps/s; the
    goal column as wide as its longest entry (40 characters at least)."""
    cells = [("trainer", "schedule", "95 % at", "goal at", "env-steps/s")]
    for name in TRAINERS:
        r = report.get(name)
        if not isinstance(r, dict) or "from_start_s" not in r:
            continue
        at_95 = "%.1f s" % r["first_95"]["from_start_s"] if r["first_95"] else "-"
        goal = (("%.1f s (it %d)" % (r["goal"]["from_start_s"], r["goal"]["iteration"]))
                if r["goal"] else "none in %.0f s; best %s" % (
                    r["from_start_s"], fmt_short(r["best"])))
        cells.append((TITLES[name], schedule_of(r), at_95, goal,
                      "%.3g" % r["train_env_steps_per_s"]))
    width = max(max(len(c[3]) for c in cells), 40)
    return ["%-22s | %-58s | %-8s | %-*s | %s" % (title, schedule, at_95, width, goal, speed)
            for title, schedule, at_95, goal, speed in cells]


def trainer_rows(name: str, r: Dict) -> List[str]:
    if "error" in r or "skipped" in r:
        return ["%-8s %s" % (name, r.get("error") or "skipped: " + r["skipped"])]

    def when(point):
        return ("%.1f s from start (%.1f s training, it %d, %.3g env steps)"
                % (point["from_start_s"], point["train_s"], point["iteration"], point["env_steps"]))

    missed = "not reached in %.0f s (limit %.0f s)" % (r["from_start_s"], r["time_limit_s"])
    if r["goal"]:
        goal = when(r["goal"])
    elif r["best"]:
        goal = "%s; best: it %d, %s" % (missed, r["best"]["iteration"], fmt_metrics(r["best"]))
    else:
        goal = missed + ", never evaluated"
    pad = " " * 8
    first_95 = when(r["first_95"]) if r["first_95"] else missed
    rows = ["%s: %s" % (TITLES.get(name, name), schedule_of(r)),
            "%s time to 95%% success   : %s" % (pad, first_95),
            "%s time to goal           : %s" % (pad, goal),
            "%s training env-steps/s   : %.0f  (%d iterations, %.3g env steps in %.1f s; "
            "construction %.1f s; evaluation %.1f s excluded)"
            % (pad, r["train_env_steps_per_s"], r["iterations"], r["env_steps"], r["train_s"],
               r["construct_s"], r["eval_total_s"]),
            "%s last periodic eval     : %s" % (pad, fmt_metrics(r["last_eval"]))]
    final = r.get("onnx_eval") or r.get("final_eval")
    if final:
        how = ("ONNX file via evaluate_file (250 envs x 4 targets in a row)" if "onnx_eval" in r
               else "torch, as the periodic eval")
        rows.append("%s final policy, %s:" % (pad, how))
        for cond in CONDITIONS:
            rows.append("%s   %-44s %s" % (pad, cond + ":", fmt_metrics(final[cond])))
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cpu, cuda or cuda:N (default cuda)")
    parser.add_argument("--num-envs", type=int, default=4096, help="parallel arms for training")
    parser.add_argument("--time-limit", type=float, default=240.0,
                        help="seconds per trainer, from start-up, evaluation excluded "
                             "(default 240)")
    parser.add_argument("--eval-every", type=int, default=20, help="iterations between evaluations")
    parser.add_argument("--eval-in-a-row", type=int, default=1, choices=(1, 4),
                        help="held-out targets per arm in the periodic evaluation: 1 (each from "
                             "the start pose, default) or 4 (in a row, as reach-rl-eval)")
    parser.add_argument("--sim-envs", type=int, nargs="*", default=None,
                        help="env counts for the simulator-alone figures "
                             "(default: --num-envs and 16384)")
    parser.add_argument("--sim-seconds", type=float, default=2.0,
                        help="seconds to time each simulator figure (default 2)")
    parser.add_argument("--skip-sim", action="store_true", help="no simulator-alone figures")
    parser.add_argument("--skip-ours", action="store_true", help="do not benchmark our PPO")
    parser.add_argument("--skip-rsl-rl", action="store_true", help="do not benchmark rsl_rl's PPO")
    parser.add_argument("--rsl-rl-settings", choices=("both", "rsl_rl", "ours"), default="both",
                        help="rsl_rl rows: its own recommended schedule (rsl_rl), configured "
                             "like ours (ours) or both (default)")
    parser.add_argument("--rsl-rl-time-limit", type=float, default=0.0,
                        help="seconds per rsl_rl row, as --time-limit (default: --time-limit)")
    parser.add_argument("--rsl-rl-log", action="store_true",
                        help="let rsl_rl write its logs and git state under OUT/rsl_rl_logs "
                             "(prints a block and saves a checkpoint per iteration; "
                             "off: no logging overhead)")
    parser.add_argument("--config", help="training YAML (default: the package's config/train.yaml)")
    parser.add_argument("--override", action="append", default=[], metavar="section.key=value",
                        help="config override for both trainers (repeatable)")
    parser.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    parser.add_argument("--json", help="write all results to this JSON file")
    return parser


def trainers_to_run(args, report: Dict) -> List:
    """``(report key, fn(args, overrides, device))`` of each trainer to bench; rsl_rl rows that
    cannot run get their reason in ``report``."""
    trainers = [] if args.skip_ours else [("ours", bench_ours)]  # type: List
    settings = ("rsl_rl", "ours") if args.rsl_rl_settings == "both" else (args.rsl_rl_settings,)
    why = "--skip-rsl-rl" if args.skip_rsl_rl else rsl_rl_unavailable()
    for setting in settings:
        if why:
            report[RSL_RL_ROWS[setting]] = {"skipped": why}
        else:
            trainers.append((RSL_RL_ROWS[setting],
                             lambda a, o, d, setting=setting: bench_rsl_rl(a, o, d, setting)))
    if why and not args.skip_rsl_rl:
        log("\n== rsl_rl skipped: cannot import it (%s) ==" % why)
    return trainers


def log_final_table(report: Dict, args, goal: Goal) -> None:
    """The report's closing block: command, goal, simulator rows, each trainer, side by side."""
    log("\n" + "=" * 100)
    log("command : %s" % report["command"])
    log("torch %s (CUDA %s) | device %s | GPU %s | %d envs | time limit %.0f s per trainer"
        % (torch.__version__, torch.version.cuda, report["device"], report["gpu"], args.num_envs,
           args.time_limit))
    log("goal    : %s (nominal, %d targets, %d in a row per arm); times exclude evaluation"
        % (goal_text(goal, " and "), EVAL_TARGETS, args.eval_in_a_row))
    sim = report.get("simulator")
    if isinstance(sim, list):
        for row in sim:
            log("%-8s %6d envs: TorchArmSim.step %.3g env-steps/s | ReachTask.step %.3g env-steps/s%s"
                % ("sim", row["num_envs"], row["arm_sim_steps_per_s"],
                   row["reach_task_steps_per_s"],
                   " (%.3g in a CUDA graph)" % row["reach_task_graph_steps_per_s"]
                   if "reach_task_graph_steps_per_s" in row else ""))
    elif isinstance(sim, dict):
        log("%-8s %s" % ("sim", sim["error"]))
    for name in TRAINERS:
        if name in report:
            log("-" * 100)
            for row in trainer_rows(name, report[name]):
                log(row)
    log("-" * 100)
    for row in side_by_side(report):
        log(row)


def start_device(device: torch.device):
    """``(device, seconds)``: on CUDA the context first, for every trainer alike, its start-up
    reported apart (rsl_rl's imports would otherwise start it before one trainer's clock but not
    the other's); 0 s elsewhere."""
    if device.type != "cuda":
        return device, 0.0
    device = torch.device("cuda", device.index or 0)
    t0 = time.perf_counter()
    torch.cuda.set_device(device)
    torch.zeros(1, device=device)
    sync(device)
    return device, time.perf_counter() - t0


def bench_overrides(args) -> List[str]:
    """Config overrides of every trainer. The goal's time to 1 cm is for an arm without the topic
    path's speed cap: the libfranka interface's limits (``--override
    task.interface=ros2_control`` to bench the capped arm); the bench's own Tracker judges, so
    the runner's until_goal is off."""
    return ["task.interface=" + LIBFRANKA, "run.until_goal=false",
            "run.device=%s" % args.device, "run.num_envs=%d" % args.num_envs,
            "run.max_iterations=100000000",
            "run.out=%s" % os.path.join(args.out, "policy.onnx")] + list(args.override)


def goal_figures(goal: Goal) -> Dict[str, Any]:
    """``goal``'s criteria under the keys of the held-out figures they judge (pose targets: with
    the orientation's, and what success and the time count to)."""
    figures = {"success_rate": goal.success, "median_final_error_mm": goal.median_error_mm,
               goal.time_key: goal.median_time_s}  # type: Dict[str, Any]
    if goal.target_type == POSE:
        figures.update({ORIENTATION_KEY: goal.median_orientation_deg, "target_type": POSE,
                        "success_within": tolerance(POSE), "time_to": tolerance(POSE)})
    return figures


def new_report(args, command: str, device: torch.device, gpu: str, cuda_init_s: float,
               overrides: List[str], goal: Goal) -> Dict[str, Any]:
    """The report's header: what ran where, with which goal."""
    return {
        "command": command,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "gpu": gpu,
        "cpu_threads": torch.get_num_threads(),
        "cuda_init_s": cuda_init_s,  # not in the trainers' "from start" times
        "args": vars(args),
        "overrides": overrides,
        "goal": dict(goal_figures(goal), milestone_success=MILESTONE_SUCCESS,
                     eval_targets=EVAL_TARGETS, eval_seed=EVAL_SEED, condition="nominal",
                     eval_in_a_row=args.eval_in_a_row),
    }


def bench_simulator_into(report: Dict, cfg: TrainConfig, device: torch.device, args) -> None:
    """The simulator-alone figures into ``report["simulator"]`` (or the error that stopped them)."""
    sizes = args.sim_envs if args.sim_envs else sorted({args.num_envs, 16384})
    log("\n== simulator alone ==")
    try:
        report["simulator"] = bench_simulator(cfg, device, sizes, args.sim_seconds)
    except Exception as exc:
        report["simulator"] = {"error": "%s: %s" % (type(exc).__name__, exc)}
        traceback.print_exc()


def save_report(report: Dict, path: Optional[str]) -> None:
    """Write ``report`` as JSON to ``path`` (atomically; nothing without a path)."""
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(report, f, indent=2, default=str)
        os.replace(path + ".tmp", path)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.eval_every < 1:
        parser.error("--eval-every must be >= 1")

    script_start = time.perf_counter()
    command = " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log("error: --device %s but CUDA is not available (torch %s)"
            % (args.device, torch.__version__))
        return 2
    device, cuda_init_s = start_device(device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    os.makedirs(args.out, exist_ok=True)
    overrides = bench_overrides(args)
    log("command: %s" % command)
    log("python %s | torch %s (CUDA %s) | device %s | GPU %s | CUDA context %.2f s (not in the "
        "times from start)" % (platform.python_version(), torch.__version__, torch.version.cuda,
                               device, gpu, cuda_init_s))
    try:
        cfg = load_config(args.config or default_config_path(), overrides)
    except Exception as exc:
        log("error: %s" % exc)
        return 2
    goal = Goal.of(cfg)  # the trainers' Trackers derive the same from the same overrides
    report = new_report(args, command, device, gpu, cuda_init_s, overrides, goal)
    save = lambda: save_report(report, args.json)  # noqa: E731 (after every stage)
    log("config: %s + overrides %s" % (args.config or default_config_path(), " ".join(overrides)))
    log("goal: %s (%d held-out targets, %d in a row per arm, nominal, deterministic policy, "
        "every %d iterations)" % (goal_text(goal), EVAL_TARGETS, args.eval_in_a_row,
                                  args.eval_every))
    save()

    if not args.skip_sim:
        bench_simulator_into(report, cfg, device, args)
        save()

    for name, fn in trainers_to_run(args, report):
        limit = args.time_limit if name == "ours" else args.rsl_rl_time_limit or args.time_limit
        log("\n== %s PPO: %d envs, time limit %.0f s ==" % (TITLES[name], args.num_envs, limit))
        try:
            report[name] = fn(args, overrides, device)
        except Exception as exc:
            report[name] = {"error": "%s: %s" % (type(exc).__name__, exc)}
            traceback.print_exc()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        save()

    log_final_table(report, args, goal)
    report["total_wall_s"] = time.perf_counter() - script_start
    log("=" * 100)
    log("total wall time %.0f s%s" % (report["total_wall_s"],
                                      (" | results: %s" % args.json) if args.json else ""))
    save()
    failed = any(isinstance(report.get(n), dict) and "error" in report[n] for n in TRAINERS)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
