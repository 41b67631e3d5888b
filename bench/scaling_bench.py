"""Data-parallel scaling of ``reach-rl-train`` under torchrun: env-steps/s and time to the goal.

Runs the trainer as a user does (``torchrun --standalone --nproc_per_node=N -m
reach_rl_train.cli --until-goal --progress-json ...``) once per case and reads its progress
lines. Cases: every ``--nproc`` at ``--num-envs`` arms per process (weak scaling), and every
``--nproc`` > 1 at ``--num-envs`` arms in total (strong scaling). Figures per case:

* env-steps/s: the median over iterations 4.. of the job's env-steps (all ranks) per second;
* time to goal: seconds from launching torchrun to rank 0 saying the goal was reached,
  start-up and held-out evaluation included (the evaluation's share is printed beside it).

The goal is the run's ``goal`` section (``--goal-time`` sets its median time to 1 cm).

    PYTHONPATH=src python bench/scaling_bench.py --device cuda --nproc 1 2 --num-envs 8192
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from typing import Dict, List


from reach_rl_train.progress_protocol import parse_line  # noqa: E402


def run_case(args, nproc: int, envs_per_rank: int, out: str) -> Dict:
    """One torchrun job; its figures."""
    policy = os.path.join(out, "policy_n%d_e%d.onnx" % (nproc, envs_per_rank))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node=%d" % nproc, "-m", "reach_rl_train.cli", "--device", args.device,
           "--num-envs", str(envs_per_rank), "--until-goal", "--progress-json", "--out", policy,
           "--max-iterations", str(args.max_iterations), "goal.median_time_s=%g" % args.goal_time,
           "goal.eval_every=%d" % args.eval_every] + list(args.override)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("NCCL_NVLS_ENABLE", "0")  # NVLink multicast stays off (machine docs)
    print("\n$ %s" % " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    iterations = []  # type: List[Dict]
    goal_s = None
    done = {}  # type: Dict
    for line in proc.stdout:
        event = parse_line(line)
        if event is None:
            if line.startswith(("goal ", "training ", "policy ")) or "Error" in line:
                print("   " + line.rstrip(), flush=True)
            if line.startswith("goal reached"):
                goal_s = time.perf_counter() - start
            continue
        if event["event"] == "iteration":
            iterations.append(event)
            if "held_out_success_rate" in event:
                print("   it %4d  %6.1f s  %.3g env-steps/s  held-out %.1f%% %.2f mm %.2f s"
                      % (event["iteration"], time.perf_counter() - start, event["steps_per_s"],
                         100 * event["held_out_success_rate"],
                         event["held_out_median_final_error_mm"],
                         event["held_out_median_time_to_1cm_s"]), flush=True)
        elif event["event"] == "done":
            done = event
    returncode = proc.wait()
    rates = [e["steps_per_s"] for e in iterations[3:]] or [e["steps_per_s"] for e in iterations]
    return {
        "nproc": nproc, "envs_per_rank": envs_per_rank, "total_envs": nproc * envs_per_rank,
        "returncode": returncode, "iterations": len(iterations),
        "env_steps_per_s": statistics.median(rates) if rates else None,
        "goal_reached": bool(done.get("goal_reached")), "time_to_goal_s": goal_s,
        "eval_s": sum(e.get("held_out_eval_s", 0.0) for e in iterations),
        "wall_s": time.perf_counter() - start, "command": " ".join(cmd),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (one GPU per process) or cpu")
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts")
    parser.add_argument("--num-envs", type=int, default=8192,
                        help="arms per process (weak scaling) and in total (strong scaling)")
    parser.add_argument("--max-iterations", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--goal-time", type=float, default=1.0,
                        help="goal's median time to 1 cm [s] (0: not judged)")
    parser.add_argument("--no-strong", action="store_true", help="weak scaling only")
    parser.add_argument("--override", action="append", default=[], metavar="section.key=value")
    parser.add_argument("--out", default="runs/scaling")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    cases = [(n, args.num_envs) for n in args.nproc]
    if not args.no_strong:
        cases += [(n, args.num_envs // n) for n in args.nproc if n > 1]
    results = [run_case(args, n, e, args.out) for n, e in cases]
    print("\n%-6s %-10s %-10s %-16s %-22s %s" % ("nproc", "arms/rank", "arms", "env-steps/s",
                                                 "time to goal (eval)", "iterations"))
    base = {r["envs_per_rank"]: r for r in results if r["nproc"] == 1}
    for r in results:
        goal = ("%.1f s (%.1f s)" % (r["time_to_goal_s"], r["eval_s"]) if r["time_to_goal_s"]
                else "not reached (rc %d)" % r["returncode"])
        rate = r["env_steps_per_s"] or float("nan")
        one = base.get(r["envs_per_rank"])
        speedup = (" (%.2fx of 1 process, weak)" % (rate / one["env_steps_per_s"])
                   if one and r["nproc"] > 1 and one["env_steps_per_s"] else "")
        print("%-6d %-10d %-10d %-16.3g %-22s %d%s" % (r["nproc"], r["envs_per_rank"],
                                                      r["total_envs"], rate, goal,
                                                      r["iterations"], speedup))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
