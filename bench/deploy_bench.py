"""Deploy benchmark: onnxruntime inference time, and deploy_node driving the simulated Franka.

Prints:

1. inference: ``Policy.__call__`` (one observation, onnxruntime, one thread) p50/p99/max [us]
   (goal p99 <= 50 us);
2. deploy_node (its own process) against sim_robot_node (its own process, joint states at
   ``--state-rate`` Hz, stamped), each pinned to a core of its own (their ``cpu``
   parameter; ``--no-pin`` leaves them free), while this process sends a new target every 2 s:
   * joint_state -> command latency p50/p99 [ms]: the age of the joint state when the
     command computed from it is published, from its stamp (the simulated controller's
     cycle) and from its DDS send time (the deploy node's own share), over every tick of
     deploy_node's run, as it logs them when it stops (goal p99 <= 1.5 ms); likewise the
     inference time inside the node and its publish period; from /diagnostics the loop
     rate and the share of ticks started by a joint state;
   * command period p50/p99 [ms] at the receiver: the send times of the commands
     sim_robot_node received, as it logs them when it stops (this process subscribes to
     nothing at 1 kHz, so it takes no CPU from the two nodes);
   * CPU use of deploy_node and sim_robot_node [% of one core] over the measurement, from /proc;
   * reflexes of the simulated Franka (must be none).

Run from the repository root after ``make setup`` (a policy from ``make demo`` or reach-rl-train)::

    source env.sh && python bench/deploy_bench.py --policy runs/demo/policy.onnx
"""
import argparse
import os
import random
import re
import tempfile
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `ros2 run reach_rl_sim franka_sim`'s launcher, from the source tree (no colcon build needed)
FRANKA_SIM = os.path.join(ROOT, "src", "reach_rl_sim", "scripts", "franka_sim")

from reach_rl_deploy.policy_runtime import Policy  # noqa: E402
from reach_rl_deploy.target_runner import Observer  # noqa: E402

TARGETS = [(0.45, 0.20, 0.35), (0.50, -0.20, 0.50), (0.35, 0.05, 0.25), (0.55, 0.25, 0.45)]


def percentiles(values, scale=1.0):
    v = np.asarray(values, dtype=float) * scale
    return np.percentile(v, 50), np.percentile(v, 99), v.max()


def bench_inference(path: str, calls: int):
    policy = Policy(path)
    rng = np.random.default_rng(0)
    inputs = [(rng.normal(0, 0.3, 7), rng.normal(0, 0.1, 7), np.array([0.45, 0.0, 0.4]),
               rng.normal(0, 0.1, 7)) for _ in range(64)]
    for i in range(200):
        policy(*inputs[i % 64])
    times = []
    for i in range(calls):
        start = time.perf_counter_ns()
        policy(*inputs[i % 64])
        times.append(time.perf_counter_ns() - start)
    return percentiles(times, 1e-3)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time [s] of process ``pid`` so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(module: str, params, log=subprocess.DEVNULL):
    args = [sys.executable, "-m", module, "--ros-args"]
    for name, value in params:
        args += ["-p", "%s:=%s" % (name, value)]
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def run_timing(log_text: str):
    """The timing figures a node logs over its whole run when it stops (TimingHistogram
    summaries): name -> (p50, p99, max) [ms]."""
    found = re.findall(r"(?:^  |: )([^:\n]+): p50 ([\d.]+) \| p99 ([\d.]+) \| max ([\d.]+) ms",
                       log_text, re.M)
    return {name: tuple(float(v) for v in values) for name, *values in found}


def start_franka_sim_stack(pin_cpu, log):
    """franka-sim (SCHED_FIFO 90, as the robot's own controller) and franka_standin_node
    (franka_ros2's joint velocity data path on it), the stand-in pinned like the simulated Franka."""
    sim = subprocess.Popen([FRANKA_SIM],
                           stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    time.sleep(3.0)  # franka-sim listens on TCP 1337
    standin = start("reach_rl_sim.franka_standin_node", [("robot_ip", "127.0.0.1")]
                    + ([("cpu", pin_cpu)] if pin_cpu is not None else []), log)
    return sim, standin


class BenchObserver(Observer):
    """reach-rl-targets' observer (no joint states: nothing here needs them), which also keeps
    the deploy node's /diagnostics windows while ``measuring``."""

    def __init__(self):
        self.lock = threading.Lock()  # (before the node spins: its callbacks use them)
        self.windows = []
        self.measuring = threading.Event()
        super().__init__("deploy_bench", joint_states=None)

    def _on_diagnostics(self, msg):
        super()._on_diagnostics(msg)
        values = {kv.key: kv.value for kv in msg.status[0].values}
        if self.measuring.is_set() and values.get("joint_state->command latency p99 [us]",
                                                  "-") != "-":
            with self.lock:
                self.windows.append(values)


def start_robot(franka_sim: bool, cpu, state_rate: float, log):
    """The simulated robot (franka-sim + stand-in, or the kinematic one) on ``cpu`` (None: any):
    (franka-sim server or None, the ROS node's process, the deploy node's extra parameters)."""
    if franka_sim:
        server, sim = start_franka_sim_stack(cpu, log)
        return server, sim, [("joint_states_topic", "/franka/joint_states")]
    sim = start("reach_rl_sim.sim_robot_node", [("joint_state_rate", state_rate)]
                + ([("cpu", cpu)] if cpu is not None else []), log)
    return None, sim, []


def measure(observer: BenchObserver, deploy, sim, seconds: float):
    """Targets for ``seconds`` once the arm moves: CPU shares of the deploy node and the robot."""
    deadline = time.monotonic() + 30.0
    observer.measuring.set()
    while not observer.windows and time.monotonic() < deadline:  # moving: latency figures appear
        observer.publish(TARGETS[-1])
        time.sleep(0.5)
    if not observer.windows:  # e.g. the robot reflexed: report what there is
        print("deploy_node did not start moving within 30 s")
    with observer.lock:
        observer.windows.clear()
    cpu0, sim_cpu0, t0 = cpu_seconds(deploy.pid), cpu_seconds(sim.pid), time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        observer.publish(TARGETS[i % len(TARGETS)])
        i += 1
        time.sleep(min(2.0, seconds - (time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    observer.measuring.clear()
    return (cpu_seconds(deploy.pid) - cpu0) / elapsed, (cpu_seconds(sim.pid) - sim_cpu0) / elapsed


def stop_all(deploy, sim, server) -> None:
    """SIGINT to the nodes (then kill after 10 s), and to franka-sim's process group."""
    for process in (deploy, sim):
        process.send_signal(2)
    for process in (deploy, sim):
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    if server is not None:
        os.killpg(server.pid, 2)
        server.wait(20)


def bench_deploy(path: str, seconds: float, state_rate: float, pin: bool, franka_sim: bool = False):
    observer = BenchObserver()
    sim_log, deploy_log = tempfile.TemporaryFile(mode="w+"), tempfile.TemporaryFile(mode="w+")
    cpus = sorted(os.sched_getaffinity(0))
    # Each node on a core of its own (the last one for deploy_node), as on a robot computer.
    pin = pin and len(cpus) >= 2
    server, sim, states = start_robot(franka_sim, cpus[0] if pin else None, state_rate, sim_log)
    deploy = start("reach_rl_deploy.deploy_node", [("policy", path), ("autostart", "true")]
                   + states + ([("cpu", cpus[-1])] if pin else []), deploy_log)
    try:
        cpu, sim_cpu = measure(observer, deploy, sim, seconds)
    finally:
        stop_all(deploy, sim, server)
        observer.close()
    windows, reflexes = observer.windows, list(observer.reflexes)
    rates = [float(w["loop rate [Hz]"]) for w in windows] or [float("nan")]
    locked = [float(w["ticks on joint states [%]"]) for w in windows] or [float("nan")]
    deploy_log.seek(0)
    sim_log.seek(0)
    sim_text = sim_log.read()
    if franka_sim:  # the stand-in's libfranka loop, and what franka-sim judged a violation
        reflexes += [line for line in sim_text.splitlines()
                     if "robot reflex" in line or re.search(r"(WARNING|ERROR).*violat", line)]
        loop = re.findall(r"libfranka loop over the run: (.*)", sim_text)
        print("franka_standin_node's libfranka loop: %s" % (loop[-1] if loop else "(not logged)"))
    return {"pinned": pin, "locked": np.median(locked), "run": run_timing(deploy_log.read()),
            "received": run_timing(sim_text), "sim_cpu": sim_cpu, "windows": len(windows),
            "cpu": cpu, "loop_rate": np.median(rates), "reflexes": reflexes}


def bench_setup(name: str, policy: str, hint: str) -> bool:
    """Before a deploy benchmark: False (and why, on stderr) without the ``policy`` file; else a
    DDS domain of its own on loopback, and the command and machine printed beside the figures."""
    if not os.path.isfile(policy):
        print("%s: no policy file %s: %s" % (name, policy, hint), file=sys.stderr)
        return False
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    print("command: %s" % " ".join([sys.executable] + sys.argv))
    print("machine: %d CPUs, %s" % (os.cpu_count(), os.uname().release), flush=True)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="runs/ros2_control/policy.onnx",
                        help="contract-2 policy file trained for the ros2_control interface")
    parser.add_argument("--calls", type=int, default=20000, help="inference calls to time")
    parser.add_argument("--seconds", type=float, default=10.0, help="deploy measurement [s]")
    parser.add_argument("--state-rate", type=float, default=1000.0,
                        help="joint state rate of the simulated Franka [Hz] (franka_ros2's "
                             "joint_state_broadcaster publishes at the 1 kHz controller rate)")
    parser.add_argument("--skip-ros", action="store_true", help="inference only")
    parser.add_argument("--franka-sim", action="store_true",
                        help="the robot is franka-sim through franka_standin_node (franka_ros2's "
                             "joint velocity path) instead of the kinematic sim_robot_node")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave the nodes unpinned (default: sim on the first CPU, deploy on the last)")
    args = parser.parse_args(argv)
    if not bench_setup("deploy_bench", args.policy, "run `make demo` or reach-rl-train first"):
        return 2
    p50, p99, worst = bench_inference(args.policy, args.calls)
    print("inference (onnxruntime, 1 thread, %d calls): p50 %.1f us | p99 %.1f us | max %.0f us "
          "(goal p99 <= 50 us)" % (args.calls, p50, p99, worst))
    if args.skip_ros:
        return 0
    r = bench_deploy(args.policy, args.seconds, args.state_rate, not args.no_pin, args.franka_sim)
    robot = ("franka-sim via franka_standin_node" if args.franka_sim
             else "sim_robot_node (joint states at %.0f Hz)" % args.state_rate)
    print("deploy_node vs %s%s, %.0f s of targets:"
          % (robot, ", each node pinned to a core" if r["pinned"] else "", args.seconds))
    run = r["run"]
    print("  deploy_node's own timing over its whole run (every tick; p50 | p99 | max, ms):")
    for name, label in (("joint_state->command latency",
                         "joint_state -> command latency from the state's stamp (the robot's cycle; "
                         "goal p99 <= 1.5 ms)"),
                        ("joint_state sent->command latency",
                         "joint_state -> command latency from the state's DDS send time (the node's share)"),
                        ("inference", "inference inside the node (cold caches between policy steps)"),
                        ("publish period", "publish period at the node")):
        if name in run:
            print("    %s: %.3f | %.3f | %.3f" % ((label,) + run[name]))
    print("  ticks on joint states: %.0f%% (the rest on the clock)" % r["locked"])
    if "command send period" in r["received"]:
        print("  commands received by sim_robot_node over its run, period by DDS send time: "
              "%.3f | %.3f | %.3f ms" % r["received"]["command send period"])
    print("  loop rate %.1f Hz (node's diagnostics)" % r["loop_rate"])
    print("  CPU: deploy_node %.0f%%, %s %.0f%% of one core"
          % (100 * r["cpu"], "franka_standin_node" if args.franka_sim else "sim_robot_node",
             100 * r["sim_cpu"]))
    print("  reflexes and violations: %s" % ("\n    ".join(r["reflexes"]) or "none"))
    return 1 if r["reflexes"] else 0


if __name__ == "__main__":
    sys.exit(main())
