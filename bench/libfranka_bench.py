"""libfranka deploy benchmark: deploy_node running Franka's 1 kHz loop against franka-sim.

Starts franka-sim (the independent FCI emulator: MuJoCo FR3, motion limits and communication
constraints enforced; ``ros2 run reach_rl_sim franka_sim``) and deploy_node with
``interface:=libfranka`` (optionally pinned to a core), then sends ``--targets`` held-out
targets (``reach-rl-targets --random``), ``--hold`` seconds each, each from wherever the last
left the arm, the first from franka-sim's own start pose (the node first moves the arm to the
ready pose). Prints:

* what ``reach-rl-targets`` measures: share within 1 cm, median final error, median time to
  1 cm, the closest any joint came to its limits, reflexes (from the node's /diagnostics);
* the node's libfranka loop over its whole run, as it logs it on SIGINT: cycle time p50/p99,
  lost cycles and the most in a row, ``control_command_success_rate`` mean and min;
* CPU of deploy_node and of franka-sim [% of one core] over the targets, from /proc;
* every line in which franka-sim reported a violation or an aborted motion (must be none).

Run from the repository root after ``make setup``, with a policy from
``reach-rl-train --interface libfranka``::

    source env.sh && python bench/libfranka_bench.py --policy runs/libfranka/policy.onnx
"""
import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from deploy_bench import cpu_seconds, start  # noqa: E402

FRANKA_SIM = os.path.join(ROOT, "scripts", "reach_rl_sim", "franka_sim")
VIOLATION = re.compile(r"(WARNING|ERROR).*(violat|reflex|abort)", re.IGNORECASE)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="runs/libfranka/policy.onnx",
                        help="policy file from reach-rl-train --interface libfranka")
    parser.add_argument("--targets", type=int, default=50, help="held-out targets in a row")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds per target")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the held-out targets")
    parser.add_argument("--rt-priority", type=int, default=80,
                        help="SCHED_FIFO priority of deploy_node's control loop (its rt_priority; "
                             "0: the ordinary scheduler)")
    parser.add_argument("--sim-rt-priority", type=int, default=90,
                        help="SCHED_FIFO priority of franka-sim (REACH_RL_FRANKA_SIM_RT_PRIORITY; "
                             "0: the ordinary scheduler)")
    parser.add_argument("--pin", action="store_true",
                        help="pin franka-sim to the first CPU and deploy_node to the last")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.policy):
        print("libfranka_bench: no policy file %s: reach-rl-train --interface libfranka" % args.policy,
              file=sys.stderr)
        return 2
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    print("command: %s" % " ".join([sys.executable] + sys.argv))
    print("machine: %d CPUs, %s" % (os.cpu_count(), os.uname().release), flush=True)
    cpus = sorted(os.sched_getaffinity(0))
    sim_log = tempfile.TemporaryFile(mode="w+")
    os.environ["REACH_RL_FRANKA_SIM_RT_PRIORITY"] = str(args.sim_rt_priority)
    sim_command = [FRANKA_SIM]
    if args.pin:
        sim_command = ["taskset", "-c", str(cpus[0])] + sim_command
    sim = subprocess.Popen(sim_command, stdout=sim_log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    deploy_log = tempfile.TemporaryFile(mode="w+")
    deploy = start("reach_rl_deploy.deploy_node",
                   [("policy", os.path.abspath(args.policy)), ("interface", "libfranka"),
                    ("robot_ip", "127.0.0.1"), ("autostart", "true"),
                    ("rt_priority", args.rt_priority)]
                   + ([("cpu", cpus[-1])] if args.pin else []), deploy_log)
    from reach_rl_deploy import target_runner

    try:
        cpu0, sim0, t0 = cpu_seconds(deploy.pid), cpu_seconds(sim.pid), time.monotonic()
        status = target_runner.main(["--random", str(args.targets), "--seed", str(args.seed),
                                     "--hold", str(args.hold), "--min-success", "0.99"])
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
    loop = re.findall(r"libfranka: (cycles .*)", node_text)
    print("deploy_node's libfranka loop over its run: %s" % (loop[-1] if loop else "(not logged)"))
    print("exit status of deploy_node: %s" % deploy.returncode)
    print("CPU over the targets: deploy_node %.0f%%, franka-sim %.0f%% of one core%s"
          % (100 * cpu, 100 * sim_cpu, " (pinned)" if args.pin else ""))
    violations = [line for line in sim_text.splitlines() if VIOLATION.search(line)]
    print("franka-sim violations and aborts: %s" % ("\n  " + "\n  ".join(violations)
                                                     if violations else "none"))
    reflexes = [line for line in node_text.splitlines() if "robot reflex" in line]
    if "the last cycles before the reflex" in node_text:
        print(node_text[node_text.index("the last cycles before the reflex"):][:4000])
    return 1 if status or violations or reflexes or deploy.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
