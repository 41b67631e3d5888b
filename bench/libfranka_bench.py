"""libfranka deploy benchmark: deploy_node against franka-sim, loops side by side in one run.

For each configuration (``--runs``) this starts franka-sim (the independent FCI emulator:
MuJoCo FR3, motion limits and communication constraints enforced; ``ros2 run reach_rl_sim
franka_sim``) and deploy_node with ``interface:=libfranka``, sends ``--targets`` held-out
targets (``reach-rl-targets --random``), ``--hold`` seconds each, each from wherever the last
left the arm (the first from franka-sim's own start pose, the node first moving the arm to
the ready pose), stops both, and records:

* what ``reach-rl-targets`` measures: targets within 1 cm, median final error, median time to
  1 cm, the closest any joint came to its limits, reflexes;
* the node's loop over its run, as it logs it on SIGINT (control_command_success_rate mean and
  min, lost cycles);
* CPU of deploy_node and franka-sim [% of one core] over the targets, from /proc;
* every line in which franka-sim reported a violation or an aborted motion.

Configurations:

* ``python``: the node before franky, Franka's 1 kHz loop in Python through pylibfranka
  (the source tree of git ref ``--python-ref``, extracted to a temporary folder);
* ``franky``: today's node, the policy at 50 Hz in Python, the 1 kHz loop in franky's C++;
* ``franky-stalls``: the same, its Python side stalled with the GIL held, 100 ms every 2 s and
  once 250 ms (``REACH_RL_TEST_GIL_STALLS``).

Run from the repository root after ``make setup``, with a policy from
``reach-rl-train --interface libfranka``::

    source env.sh && python bench/libfranka_bench.py --policy runs/lf/policy.onnx --pin
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_setup import FRANKA_SIM, bench_setup, cpu_seconds  # noqa: E402
from reach_rl_core.filter_limits import LIBFRANKA  # noqa: E402

VIOLATION = re.compile(r"(WARNING|ERROR).*(violat|reflex|abort)", re.IGNORECASE)
PYTHON_LOOP_REF = "ec096b0"  # the last commit whose deploy node ran the 1 kHz loop in Python
STALLS = "0.1/2,0.25@%.1f"  # s; the one long stall in the middle of the run


def python_loop_tree(ref: str) -> str:
    """``src`` of git ref ``ref``, extracted to a temporary folder; returns that folder's src."""
    folder = tempfile.mkdtemp(prefix="reach_rl_%s_" % ref)
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref, "src"], check=True,
                             stdout=subprocess.PIPE).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return os.path.join(folder, "src")


def start_node(params, log, src: Optional[str], env: Dict[str, str]) -> subprocess.Popen:
    """deploy_node from the source tree ``src`` (None: the installed packages), its environment
    extended by ``env``."""
    module = ("reach_rl_deploy.testing.stalled_deploy_node" if "REACH_RL_TEST_GIL_STALLS" in env
              else "reach_rl_deploy.deploy_node")
    args = [sys.executable, "-m", module, "--ros-args"]
    for name, value in params:
        args += ["-p", "%s:=%s" % (name, value)]
    full = dict(os.environ, **env)
    if src:
        full["PYTHONPATH"] = src + os.pathsep + os.environ.get("PYTHONPATH", "")
    return subprocess.Popen(args, env=full, stdout=log, stderr=subprocess.STDOUT)


def keep_logs(directory: str, run: str, texts: Dict[str, str]) -> None:
    """Write each process's log text to ``directory``/<run>_<process>.log."""
    os.makedirs(directory, exist_ok=True)
    for process, text in texts.items():
        with open(os.path.join(directory, "%s_%s.log" % (run, process)), "w") as log:
            log.write(text)


def run_configuration(name: str, args, src: str, env: Dict[str, str]) -> Dict[str, object]:
    """One run of franka-sim, deploy_node (from ``src``, its environment extended by ``env``)
    and the targets; returns the figures by column name."""
    print("== %s" % name, flush=True)
    cpus = sorted(os.sched_getaffinity(0))
    sim_log = tempfile.TemporaryFile(mode="w+")
    sim_command = [FRANKA_SIM]
    if args.pin:
        sim_command = ["taskset", "-c", str(cpus[0])] + sim_command
    sim = subprocess.Popen(sim_command, stdout=sim_log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    deploy_log = tempfile.TemporaryFile(mode="w+")
    deploy = start_node([("policy", os.path.abspath(args.policy)), ("interface", LIBFRANKA),
                         ("robot_ip", "127.0.0.1"), ("autostart", "true"),
                         ("rt_priority", args.rt_priority)]
                        + ([("cpu", cpus[-1])] if args.pin else []), deploy_log, src, env)
    try:
        cpu0, sim0, t0 = cpu_seconds(deploy.pid), cpu_seconds(sim.pid), time.monotonic()
        targets = subprocess.run(
            [sys.executable, "-m", "reach_rl_deploy.target_runner", "--random", str(args.targets),
             "--policy", os.path.abspath(args.policy),
             "--seed", str(args.seed), "--hold", str(args.hold), "--min-success", "0.99",
             "--wait", "60"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        elapsed = time.monotonic() - t0
        cpu = (cpu_seconds(deploy.pid) - cpu0) / elapsed
        sim_cpu = (cpu_seconds(sim.pid) - sim0) / elapsed
    finally:
        deploy.send_signal(signal.SIGINT)
        try:
            deploy.wait(20)
        except subprocess.TimeoutExpired:
            deploy.kill()
        os.killpg(sim.pid, signal.SIGINT)
        try:
            sim.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(sim.pid, signal.SIGKILL)
    deploy_log.seek(0)
    sim_log.seek(0)
    node_text, sim_text = deploy_log.read(), sim_log.read()
    if args.keep_logs:
        keep_logs(args.keep_logs, name, {"deploy_node": node_text, "franka_sim": sim_text})
    summary = targets.stdout.strip().splitlines()[-1] if targets.stdout.strip() else "(none)"
    print(summary)
    loop = re.findall(r"libfranka: (.*)", node_text)
    violations = [line for line in sim_text.splitlines() if VIOLATION.search(line)]
    reflexes = [line for line in node_text.splitlines() if "robot reflex" in line]
    for line in violations + reflexes:
        print("  " + line)
    figures = {"targets": summary, "loop": loop[-1] if loop else "(not logged)",
               "exit": "targets %d, node %s" % (targets.returncode, deploy.returncode),
               "ok": targets.returncode == 0 and deploy.returncode == 0 and not violations
               and not reflexes,
               "cpu": "deploy_node %.0f%%, franka-sim %.0f%%" % (100 * cpu, 100 * sim_cpu),
               "franka-sim violations": str(len(violations)), "reflexes": str(len(reflexes))}
    success = re.search(r"success_rate mean ([0-9.]+|nan), min ([0-9.]+)", figures["loop"])
    lost = re.search(r"lost cycles (?:about )?(\d+)", figures["loop"])
    figures["success rate mean / min"] = "%s / %s" % success.groups() if success else "-"
    figures["lost cycles"] = lost.group(1) if lost else "-"
    return figures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="runs/libfranka/policy.onnx",
                        help="policy file from reach-rl-train --interface libfranka")
    parser.add_argument("--runs", default="python,franky,franky-stalls",
                        help="comma-separated configurations (module docstring)")
    parser.add_argument("--python-ref", default=PYTHON_LOOP_REF,
                        help="git ref whose deploy node runs the 1 kHz loop in Python")
    parser.add_argument("--targets", type=int, default=50, help="held-out targets in a row")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds per target")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the held-out targets")
    parser.add_argument("--rt-priority", type=int, default=80,
                        help="deploy_node's rt_priority (python: all its threads; franky: the 1 kHz "
                             "control thread; 0: the ordinary scheduler)")
    parser.add_argument("--sim-rt-priority", type=int, default=90,
                        help="SCHED_FIFO priority of franka-sim (0: the ordinary scheduler)")
    parser.add_argument("--keep-logs", metavar="DIR",
                        help="write each run's deploy_node and franka-sim logs to DIR")
    parser.add_argument("--pin", action="store_true",
                        help="pin franka-sim to the first CPU and deploy_node to the last")
    args = parser.parse_args(argv)
    if not bench_setup("libfranka_bench", args.policy, "reach-rl-train --interface libfranka"):
        return 2
    os.environ["REACH_RL_FRANKA_SIM_RT_PRIORITY"] = str(args.sim_rt_priority)
    configurations = {  # name: (source tree or None: this checkout's packages, environment)
        "python": lambda: (python_loop_tree(args.python_ref), {}),
        "franky": lambda: (None, {}),
        "franky-stalls": lambda: (None, {"REACH_RL_TEST_GIL_STALLS":
                                        STALLS % (args.targets * args.hold / 2)}),
    }
    names = args.runs.split(",")
    unknown = [n for n in names if n not in configurations]
    if unknown:
        parser.error("unknown configuration(s) %s; known: %s" % (unknown, ", ".join(configurations)))
    results = {name: run_configuration(name, args, *configurations[name]()) for name in names}
    rows = ["targets", "success rate mean / min", "lost cycles", "reflexes",
            "franka-sim violations", "cpu", "exit", "loop"]
    print("\n| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for row in rows:
        print("| %s | %s |" % (row, " | ".join(results[n][row].replace(" | ", "; ") for n in names)))
    return 0 if all(results[n]["ok"] for n in names) else 1


if __name__ == "__main__":
    sys.exit(main())
