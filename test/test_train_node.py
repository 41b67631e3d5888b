"""train_node over real DDS: the node runs as its own process (and the trainer as its child),
this test process listens to its progress, diagnostics and latched policy path.

Runs use a session-random ROS_DOMAIN_ID, DDS discovery on localhost, tiny trainings
(32 envs, one torch thread) and a temporary output folder.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

# DDS settings must be in place before rclpy is initialised; subprocesses inherit them.
os.environ.setdefault("REACH_RL_TEST_DOMAIN_ID", str(random.Random().randint(1, 100)))
os.environ["ROS_DOMAIN_ID"] = os.environ["REACH_RL_TEST_DOMAIN_ID"]
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

try:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
except Exception as exc:  # ImportError, or OSError for missing ROS shared libraries
    pytest.skip("rclpy / ROS 2 messages unavailable (%s: %s); source ROS 2 Jazzy or use the venv's ROS "
                "wheels" % (type(exc).__name__, exc), allow_module_level=True)
pytest.importorskip("torch", reason="torch is not installed: the trainer needs it")

pytestmark = pytest.mark.ros

SRC = str(Path(__file__).resolve().parents[1] / "src")
TINY = ["num_envs:=32", "overrides:=run.threads=1"]
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture(scope="module")
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


class Listener:
    """This test's side: records /reach_rl_train/progress and /diagnostics on a spin thread."""

    def __init__(self, context, name):
        self.node = rclpy.create_node(name, context=context)
        self.lock = threading.RLock()
        self.progress, self.diagnostics, self.policies = [], [], []
        self.node.create_subscription(String, "/reach_rl_train/progress", self._on_progress, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_progress(self, msg):
        with self.lock:
            self.progress.append(json.loads(msg.data))

    def _on_diagnostics(self, msg):
        with self.lock:
            self.diagnostics += [s for s in msg.status if s.name == "reach_rl_train"]

    def _on_policy(self, msg):
        with self.lock:
            self.policies.append(msg.data)

    def subscribe_policy(self):
        self.node.create_subscription(String, "/reach_rl_train/policy", self._on_policy, LATCHED)

    def events(self, kind):
        with self.lock:
            return [e for e in self.progress if e["event"] == kind]

    def wait_for(self, predicate, timeout, what, process=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return
            if process is not None and process.poll() is not None:
                pytest.fail("train_node exited (%s) while waiting for %s" % (process.returncode, what))
            time.sleep(0.05)
        pytest.fail("timed out after %g s waiting for %s" % (timeout, what))

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def start_node(params, log_dir):
    """The node as a process; its output goes to a file (a pipe nobody reads would fill up
    and block it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, "-m", "reach_rl_train.train_node", "--ros-args"]
    for param in params:
        argv += ["-p", param]
    log = open(str(log_dir / "train_node.log"), "w+")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log = log
    return process


def finish(process, timeout):
    """Wait for the node to exit; its output."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("train_node did not exit within %g s:\n%s" % (timeout, _output(process)))
    output = _output(process)
    print(output)
    return output


def _output(process):
    process.log.seek(0)
    text = process.log.read()
    process.log.close()
    return text


@pytest.fixture
def listener(ros_context, request):
    harness = Listener(ros_context, "test_" + request.node.name.replace("[", "_").replace("]", "")
                       .replace("-", "_").replace(".", "_"))
    yield harness
    harness.close()


@pytest.mark.parametrize("param, message", [
    ("backend:=bullet", "unknown backend 'bullet' (known: torch, isaacgym)"),
    ("num_envs:=many", "num_envs must be a positive integer, got 'many'"),
    ("python:=/nonexistent/bin/python3.8", "python interpreter '/nonexistent/bin/python3.8' does not exist"),
])
def test_bad_arguments_refused_before_training(param, message, tmp_path):
    process = start_node([param], tmp_path)
    output = finish(process, 30.0)
    assert process.returncode == 2
    assert "train_node: refusing to start: " + message in output


@pytest.mark.slow
def test_trains_relays_progress_and_latches_policy(listener, tmp_path):
    out = tmp_path / "policy.onnx"
    process = start_node(TINY + ["max_iterations:=3", "output:=%s" % out, "linger:=30.0"], tmp_path)
    try:
        listener.wait_for(lambda: any(s.message.startswith("done") for s in listener.diagnostics), 90.0,
                          "the 'done' diagnostics status", process)
        listener.subscribe_policy()  # late: training is over and the path published
        listener.wait_for(lambda: listener.policies, 10.0, "the latched policy path", process)
    finally:
        process.send_signal(signal.SIGINT)  # ends the linger
        finish(process, 20.0)
    assert process.returncode == 0
    assert listener.policies == [str(out)] and out.is_file()
    iterations = listener.events("iteration")
    assert [e["iteration"] for e in iterations] == [1, 2, 3]
    assert all(e["max_iterations"] == 3 and e["steps_per_s"] > 0 and 0.0 <= e["success"] <= 1.0
               for e in iterations)
    assert listener.events("start")[0]["num_envs"] == 32
    assert listener.events("done")[0]["interrupted"] is False
    status = [s for s in listener.diagnostics if s.message.startswith("training")][-1]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.OK and values["iteration"] == "3/3"
    assert {"steps/s", "mean reward", "success rate [%]"} <= set(values)


@pytest.mark.slow
def test_sigint_checkpoints_and_stops(listener, tmp_path):
    out = tmp_path / "policy.onnx"
    process = start_node(TINY + ["max_iterations:=10000", "output:=%s" % out], tmp_path)
    try:
        listener.wait_for(lambda: listener.events("iteration"), 90.0, "the first iteration", process)
    finally:
        # Twice, as a terminal's Ctrl-C under `ros2 launch` arrives: the second is ignored.
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        finish(process, 60.0)
    assert process.returncode == 130
    assert (tmp_path / "policy_logs" / "checkpoint.pt").is_file()
    assert out.is_file()
    listener.wait_for(lambda: listener.events("done"), 5.0, "the 'done' event")
    done = listener.events("done")[0]
    assert done["interrupted"] is True and done["iteration"] < 10000
    assert any(s.level == DiagnosticStatus.WARN and "stopped early" in s.message
               for s in listener.diagnostics)
