"""Topic-path benchmark: deploy_node -> joint_trajectory_controller (the franka_ros2 stand-in)
-> franka-sim, under load, stalls and kill -9.

The processes are those of ``franka.launch.py sim:=true`` (franka-sim, franka_standin_node,
deploy_node), taken from the same plan and started the way ``reach-rl-launch`` starts them,
the robot's two (franka-sim, the stand-in's 1 kHz loop) under SCHED_FIFO where permitted. Runs
(``--runs``):

* ``reach``: ``--targets`` held-out targets in a row (``reach-rl-targets --random``), ``--hold``
  seconds each: targets within 1 cm, median final error and time to 1 cm, the closest joint to
  its limits, reflexes (the stand-in's), franka-sim's violation lines;
* ``stalls``: the same with the deploy node's Python side holding the GIL 100 ms every 2 s and
  once 250 ms (``REACH_RL_TEST_GIL_STALLS``);
* ``kill9``: a target, ``kill -9`` of the deploy node once a joint moves faster than KILL_SPEED
  (change of position over SPEED_WINDOW), the time until every joint stays below REST_SPEED
  from then, reflexes; then a new deploy node and three targets.

``--load N`` runs N busy processes (one Python busy loop each, ordinary priority) for the whole
benchmark: two on this 2-core machine is "both cores busy". Run from the repository root after
``make build``::

    source env.sh && python bench/topic_bench.py --policy runs/policy.onnx --load 2
"""
import argparse
import dataclasses
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from rclpy.qos import QoSProfile, ReliabilityPolicy

from reach_rl_deploy.launch_plan import franka_plan
from reach_rl_deploy.launch_plan.plan_runner import Runner

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_setup import bench_setup, inference_times  # noqa: E402

VIOLATION = re.compile(r"(WARNING|ERROR).*(violat|reflex|abort)", re.IGNORECASE)
STALLS = "0.1/2,0.25@30"
REST_SPEED = 0.01  # rad/s: every joint slower than this is at rest
SPEED_WINDOW = 0.05  # s over which a joint's speed is its change of position
BEST_EFFORT_NEWEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
KILL_SPEED = 0.1  # rad/s: the deploy node is killed once a joint moves faster
JOINT_STATES = "/franka/joint_states"


class Stack:
    """franka-sim and the stand-in, and a deploy node that can be killed and started again."""

    def __init__(self, policy: str, workdir: str, log):
        from ament_index_python.packages import get_package_share_directory

        plan = franka_plan.plan({"policy": policy, "sim": "true"})
        processes = franka_plan.node_processes(plan, get_package_share_directory("reach_rl_deploy"))
        self.robot_processes, self.deploy_process = processes[:-1], processes[-1:]
        self.workdir, self.log = workdir, log
        self.robot = Runner(self.robot_processes, workdir, write=self._write)
        self.deploy = None  # type: Optional[Runner]
        self.lines = []  # type: List[str]

    def _write(self, line: str) -> None:
        self.lines.append(line)
        self.log.write(line + "\n")

    def start_robot(self) -> None:
        self.robot.start()

    def start_deploy(self, env: Dict[str, str]) -> None:
        """The deploy node; with REACH_RL_TEST_GIL_STALLS in ``env``, its test-only entry point
        that stalls (reach_rl_deploy.testing.stalled_deploy_node)."""
        process = self.deploy_process
        if "REACH_RL_TEST_GIL_STALLS" in env:
            process = [dataclasses.replace(process[0], executable="deploy_node_test_stalls")]
        saved = dict(os.environ)
        os.environ.update(env)  # the runner gives its children this process's environment
        try:
            self.deploy = Runner(process, self.workdir, write=self._write)
            self.deploy.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def kill_deploy(self) -> None:
        _, child = self.deploy.children[0]
        child.send_signal(signal.SIGKILL)
        child.wait()

    def stop(self) -> Dict[str, int]:
        codes = self.deploy.stop() if self.deploy else {}
        codes.update(self.robot.stop())
        return codes

    def violations(self) -> List[str]:
        return [line for line in self.lines if line.startswith("[franka_sim]")
                and VIOLATION.search(line)]


class SpeedRecorder:
    """(header stamp [s, system clock], joint positions [rad]) of every joint state on
    JOINT_STATES that this process gets to read. Stamps, not receipt times.
    Speeds come from positions over SPEED_WINDOW: franka-sim's measured velocity of joint 7
    chatters at about 0.08 rad/s around zero while the arm is commanded to rest."""

    def __init__(self):
        import rclpy
        from sensor_msgs.msg import JointState

        from reach_rl_deploy.ros_plumbing.background_spin import BackgroundSpin

        rclpy.init()
        self.node = rclpy.create_node("topic_bench")
        self.samples = []  # type: List[tuple]
        # Best effort, the newest only: under load this ordinary process takes what it can
        # (a few hundred a second) and never falls behind; speeds come from stamped positions.
        self.node.create_subscription(JointState, JOINT_STATES, self._on_state, BEST_EFFORT_NEWEST)
        self.spinner = BackgroundSpin(self.node)


    def _on_state(self, msg) -> None:
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        self.samples.append((stamp, np.array(msg.position)))

    def speed_now(self) -> float:
        """The largest joint speed [rad/s] over the last SPEED_WINDOW of samples (0: too few)."""
        recent = [item for item in self.samples[-200:]
                  if item[0] >= self.samples[-1][0] - SPEED_WINDOW] if self.samples else []
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < 0.5 * SPEED_WINDOW:
            return 0.0
        return float(np.max(np.abs(recent[-1][1] - recent[0][1]))) / (recent[-1][0] - recent[0][0])

    def speeds(self) -> List[tuple]:
        """(stamp [s], largest joint speed [rad/s] over the SPEED_WINDOW before it)."""
        result, start = [], 0
        for stamp, position in self.samples:
            while self.samples[start][0] < stamp - SPEED_WINDOW:
                start += 1
            then, before = self.samples[start]
            if stamp - then >= 0.5 * SPEED_WINDOW:
                result.append((stamp, float(np.max(np.abs(position - before))) / (stamp - then)))
        return result

    def rest_after(self, since: float) -> float:
        """Seconds from ``since`` [s, system clock] until the arm stays at rest (nan: never)."""
        speeds = [(t, speed) for t, speed in self.speeds() if t >= since]
        moving = [t for t, speed in speeds if speed >= REST_SPEED]
        if not speeds or speeds[-1][1] >= REST_SPEED:
            return float("nan")
        return (max(moving) if moving else since) - since

    def close(self) -> None:
        import rclpy

        self.spinner.close()
        rclpy.try_shutdown()


def targets(policy: str, count: int, hold: float, seed: int) -> subprocess.CompletedProcess:
    """reach-rl-targets on ``count`` held-out targets of ``policy``'s box."""
    return subprocess.run(
        [sys.executable, "-m", "reach_rl_deploy.target_runner", "--random", str(count),
         "--policy", policy, "--seed", str(seed), "--hold", str(hold), "--min-success", "0.98",
         "--joint-states", JOINT_STATES, "--wait", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def summary_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def run_reach(stack: Stack, args, env: Dict[str, str]) -> str:
    stack.start_deploy(env)
    done = targets(args.policy, args.targets, args.hold, args.seed)
    return "%s (exit %d)" % (summary_line(done), done.returncode)


def run_kill9(stack: Stack, args, recorder: SpeedRecorder) -> str:
    stack.start_deploy({})
    warm = targets(args.policy, 1, 3.0, args.seed + 1)  # homed, then one target
    moving = subprocess.Popen(  # the next target, killed mid-motion
        [sys.executable, "-m", "reach_rl_deploy.target_runner", "0.55,-0.25,0.30", "--hold", "2",
         "--joint-states", JOINT_STATES], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15.0
    speed = 0.0
    while time.monotonic() < deadline and speed <= KILL_SPEED:
        time.sleep(0.02)
        speed = recorder.speed_now()
    killed = time.time()
    stack.kill_deploy()
    time.sleep(2.5)
    rest = recorder.rest_after(killed)
    moving.wait()
    stack.deploy.children.clear()  # the killed node: nothing left to stop
    stack.start_deploy({})
    after = targets(args.policy, 3, args.hold, args.seed + 2)
    return ("killed at %.2f rad/s: at rest %.3f s later | warm-up: %s | new node: %s (exit %d)"
            % (speed, rest, summary_line(warm), summary_line(after), after.returncode))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", required=True, help="a policy for the ros2_control interface")
    parser.add_argument("--runs", default="reach,stalls,kill9")
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds per target")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--load", type=int, default=0, help="busy processes during the runs")
    parser.add_argument("--calls", type=int, default=20000, help="inference calls to time")
    args = parser.parse_args(argv)
    args.policy = os.path.abspath(args.policy)
    if not bench_setup("topic_bench", args.policy, "reach-rl-train (interface ros2_control)"):
        return 2
    print("inference (onnxruntime, %d calls): p50 %.1f us | p99 %.1f us | max %.0f us"
          % ((args.calls,) + tuple(inference_times(args.policy, args.calls))), flush=True)
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    recorder = SpeedRecorder()
    results = {}
    try:
        for name in args.runs.split(","):
            print("== %s (load: %d busy processes)" % (name, args.load), flush=True)
            with tempfile.TemporaryDirectory() as workdir, \
                    open(os.path.join(tempfile.gettempdir(), "topic_bench_%s.log" % name), "w") as log:
                stack = Stack(args.policy, workdir, log)
                stack.start_robot()
                try:
                    if name == "kill9":
                        result = run_kill9(stack, args, recorder)
                    else:
                        env = {"REACH_RL_TEST_GIL_STALLS": STALLS} if name == "stalls" else {}
                        result = run_reach(stack, args, env)
                finally:
                    codes = stack.stop()
                violations = stack.violations()
                results[name] = "%s | franka-sim violations %d | exit statuses %s" % (
                    result, len(violations), codes)
                for line in violations[:5]:
                    print("  " + line)
            print(results[name], flush=True)
    finally:
        recorder.close()
        for process in load:
            process.kill()
    print("\n".join("%-7s %s" % item for item in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
