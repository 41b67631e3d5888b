"""train_node over real DDS: the node runs as its own process (and the trainer as its child),
this test process listens to its progress, diagnostics and latched policy path.

Runs use a session-random ROS_DOMAIN_ID, DDS discovery on localhost, tiny trainings
(32 envs, one torch thread) and a temporary output folder.
"""
import json
import signal
import time

import pytest
from ros_harness import NodeProcess, TestNode, ros_context_fixture, test_node_name

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from reach_rl_deploy.ros_plumbing.qos import reliable  # noqa: E402

pytest.importorskip("torch", reason="torch is not installed: the trainer needs it")

pytestmark = pytest.mark.ros

TINY = [("num_envs", 32), ("overrides", "run.threads=1")]

ros_context = pytest.fixture(scope="module")(ros_context_fixture)


class Listener(TestNode):
    """This test's side: records /reach_rl_train/progress and /diagnostics."""

    def __init__(self, context, name):
        super().__init__(context, name)
        self.progress, self.diagnostics, self.policies = [], [], []
        self.record(String, "/reach_rl_train/progress", 50, self.progress, stamp=False,
                    keep=lambda msg: json.loads(msg.data))
        self.record(DiagnosticArray, "/diagnostics", 50, self.diagnostics, stamp=False,
                    keep=lambda msg: [s for s in msg.status if s.name == "reach_rl_train"])

    def subscribe_policy(self):
        self.record(String, "/reach_rl_train/policy", reliable(1, latched=True), self.policies,
                    stamp=False, keep=lambda msg: msg.data)

    def statuses(self):
        with self.lock:
            return [s for batch in self.diagnostics for s in batch]

    def events(self, kind):
        with self.lock:
            return [e for e in self.progress if e["event"] == kind]


def start_node(params):
    return NodeProcess("reach_rl_train.train_node", params)


@pytest.fixture
def listener(ros_context, request):
    harness = Listener(ros_context, test_node_name(request))
    yield harness
    harness.close()


@pytest.mark.parametrize("param, message", [
    (("backend", "bullet"), "unknown backend 'bullet' (known: torch, isaacgym)"),
    (("num_envs", "many"), "num_envs must be a positive integer, got 'many'"),
    (("python", "/nonexistent/bin/python3.8"),
     "python interpreter '/nonexistent/bin/python3.8' does not exist"),
])
def test_bad_arguments_refused_before_training(param, message, ros_context):
    process = start_node([param])
    assert process.wait(30.0) == 2
    assert "train_node: refusing to start: " + message in process.output


@pytest.mark.slow
def test_trains_relays_progress_and_latches_policy(listener, tmp_path):
    out = tmp_path / "policy.onnx"
    process = start_node(TINY + [("max_iterations", 3), ("output", out), ("linger", 30.0)])
    try:
        process.wait_for_line("latched on /reach_rl_train/policy", 90.0)
        listener.subscribe_policy()  # late: training is over and the path published
        listener.wait_for(lambda: listener.policies, 10.0, "the latched policy path")
        assert process.interrupt(20.0) == 0  # ends the linger
    finally:
        process.stop()
    assert listener.policies == [str(out)] and out.is_file()
    iterations = listener.events("iteration")
    assert [e["iteration"] for e in iterations] == [1, 2, 3]
    assert all(e["max_iterations"] == 3 and e["steps_per_s"] > 0 and 0.0 <= e["success"] <= 1.0
               for e in iterations)
    assert listener.events("start")[0]["num_envs"] == 32
    assert listener.events("done")[0]["interrupted"] is False
    status = [s for s in listener.statuses() if s.message.startswith("training")][-1]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.OK and values["iteration"] == "3/3"
    assert {"steps/s", "mean reward", "success rate [%]"} <= set(values)


@pytest.mark.slow
def test_sigint_checkpoints_and_stops(listener, tmp_path):
    out = tmp_path / "policy.onnx"
    process = start_node(TINY + [("max_iterations", 10000), ("output", out)])
    try:
        listener.wait_for(lambda: listener.events("iteration"), 90.0, "the first iteration")
        # Twice, as a terminal's Ctrl-C under `ros2 launch` arrives: the second is ignored.
        process.process.send_signal(signal.SIGINT)
        time.sleep(0.05)
        assert process.interrupt(60.0) == 130
    finally:
        process.stop()
    assert (tmp_path / "policy_logs" / "checkpoint.pt").is_file()
    assert out.is_file()
    listener.wait_for(lambda: listener.events("done"), 5.0, "the 'done' event")
    done = listener.events("done")[0]
    assert done["interrupted"] is True and done["iteration"] < 10000
    listener.wait_for(lambda: any(s.level == DiagnosticStatus.WARN and "stopped early" in s.message
                                  for s in listener.statuses()), 5.0, "a WARN 'stopped early' status")
