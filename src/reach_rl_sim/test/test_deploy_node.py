"""deploy_node's topic path over real DDS: the node runs as its own process and drives either
the kinematic simulated Franka (reach_rl_sim.sim_robot_node, another process) or joint states
this test publishes; the test reads every command.

With the session's policy (conftest.reach_policy: trained by train_node as its own process, the
trainer as its child) the first test is the whole chain end to end: train node -> policy file ->
deploy node + simulated Franka -> three targets within 1 cm, no reflex. On franka-sim through
franka_ros2's stand-in, three 1 kHz Python processes share this 2-core machine and lose cycles
(measured by bench/deploy_bench.py --franka-sim, not asserted here).

Every command stream the test receives is judged as Franka's 1 kHz controller would read it,
message by message (``limit_monitor.StreamMonitor``), besides the simulated Franka's own checks.
"""
import contextlib
import threading
import time

import numpy as np
import pytest
from ros_harness import NodeProcess, TestNode, ros_context_fixture, test_node_name

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PointStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from reach_rl_core.franka_model import FR3, READY_POSE, joint_names, tcp_position  # noqa: E402
from reach_rl_sim.limit_monitor import StreamMonitor  # noqa: E402
from reach_rl_deploy.ros_qos import reliable  # noqa: E402

pytestmark = pytest.mark.ros

COMMAND_TOPIC = "/joint_velocity_controller/commands"
NAMES = joint_names("fr3")
TARGETS = [(0.45, 0.20, 0.35), (0.50, -0.20, 0.50), (0.35, 0.05, 0.25)]

ros_context = pytest.fixture(scope="module")(ros_context_fixture)


class Operator(TestNode):
    """The test's side: records commands, joint states, reflexes and diagnostics; sends targets
    and (where no simulated robot runs) joint states."""

    def __init__(self, context, name):
        super().__init__(context, name)
        self.commands, self.states, self.reflexes, self.diagnostics = [], [], [], []
        self.commands_sent, self.states_sent = [], []  # DDS send times, system clock [s]
        self.record(Float64MultiArray, COMMAND_TOPIC, 10000, self.commands, sent=self.commands_sent)
        self.record(JointState, "/joint_states", 100, self.states, sent=self.states_sent)
        self.record(String, "/sim_robot/reflex", reliable(10, latched=True), self.reflexes,
                    stamp=False, keep=lambda msg: msg.data)
        self.record(DiagnosticArray, "/diagnostics", 10, self.diagnostics, stamp=False)
        self.target_pub = self.node.create_publisher(PointStamped, "/reach_target", 10)
        self.state_pub = self.node.create_publisher(JointState, "/joint_states", 10)

    def send_target(self, xyz, frame="fr3_link0"):
        msg = PointStamped()
        msg.header.frame_id = frame
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
        self.target_pub.publish(msg)

    def publish_state(self, position, names=NAMES):
        msg = JointState(name=list(names), position=[float(v) for v in position],
                         velocity=[0.0] * len(names))
        self.state_pub.publish(msg)

    def tcp(self, states=None):
        states = self.states if states is None else states
        with self.lock:
            return tcp_position(np.array(states[-1][1].position)) if states else None

    def command_array(self, since=0.0):
        with self.lock:
            return np.array([m.data for t, m in self.commands if t >= since])

    def wait_for_commands(self, count, timeout=20.0):
        self.wait_for(lambda: len(self.commands) >= count, timeout, "%d commands" % count)


class StatePublisher:
    """Publishes a fixed joint state at ``rate`` Hz from a thread of the test (a robot stand-in
    whose state is chosen by the test)."""

    def __init__(self, operator, position, names=NAMES, rate=250.0):
        self.operator, self.position, self.names, self.period = operator, position, names, 1 / rate
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            self.operator.publish_state(self.position, self.names)
            time.sleep(self.period)

    def stop(self):
        self.running = False
        self.thread.join(1.0)


def stream_violations(commands, q=READY_POSE):
    """Limit violations of a received command stream read one message per 1 ms cycle."""
    monitor = StreamMonitor(FR3, NAMES)
    return [error for error in (monitor.check(q, c) for c in commands) if error]


@pytest.fixture
def operator(ros_context, request):
    node = Operator(ros_context, test_node_name(request))
    yield node
    node.close()


def deploy(policy, **params):
    defaults = {"policy": policy, "robot": "fr3", "autostart": True}
    defaults.update(params)
    return NodeProcess("reach_rl_deploy.deploy_node", sorted(defaults.items()))


@contextlib.contextmanager
def deploy_on_states(operator, policy, names=NAMES, **params):
    """deploy_node fed by this test's joint states (the ready pose, ``names``), both stopped after."""
    node = deploy(policy, **params)
    states = StatePublisher(operator, READY_POSE, names=names)
    try:
        yield node, states
    finally:
        states.stop()
        node.stop()


@pytest.mark.slow
def test_reaches_three_targets_then_stops_when_joint_states_stop(operator, reach_policy):
    """Deploy node + simulated Franka: three successive targets within 1 cm, no reflex, a ~1 kHz
    stream within limits; when the robot's joint states stop, commands ramp to zero."""
    # Joint states every controller cycle, as franka_ros2's joint_state_broadcaster sends them:
    # the deploy node ticks on each of them.
    sim = NodeProcess("reach_rl_sim.sim_robot_node", [("robot", "fr3"), ("joint_state_rate", 1000.0)])
    node = deploy(reach_policy)
    try:
        operator.wait_for(lambda: operator.states, 20.0, "joint states from the simulated Franka")
        operator.wait_for_commands(200)
        start_sent = time.time()
        for target in TARGETS:
            operator.send_target(target)
            deadline = time.monotonic() + 6.0
            while time.monotonic() < deadline:
                time.sleep(0.02)
                if np.linalg.norm(operator.tcp() - target) < 0.005:
                    break
            time.sleep(0.5)  # settle, then judge the error
            error = np.linalg.norm(operator.tcp() - target)
            print("target %s: TCP error %.1f mm" % (target, 1000 * error))
            assert error < 0.01, "target %s missed by %.1f mm" % (target, 1000 * error)
        assert operator.reflexes == [], operator.reflexes

        with operator.lock:  # the node's timing: DDS send times, not this process's receipt
            sent = np.array(operator.commands_sent)
        periods = np.diff(sent[sent >= start_sent])
        # The rate is a figure of bench/deploy_bench.py, not a judge here: on a loaded 2-core
        # machine three 1 kHz processes share the CPU (CI saw a 1.34 ms median).
        print("command period median %.3f ms, p99 %.3f ms" % (1e3 * np.median(periods),
                                                              1e3 * np.percentile(periods, 99)))
        # A figure, not a judge: a loaded machine's late states fall back to the clock.
        with operator.lock:
            locked = [float(kv.value) for d in operator.diagnostics for kv in d.status[0].values
                      if kv.key == "ticks on joint states [%]"]
        print("ticks on joint states per diagnostics window [%%]: %s" % locked)

        # Joint states stop while the arm moves to a new target; the controller still runs and
        # judges every command.
        operator.send_target((0.55, 0.25, 0.45))
        time.sleep(0.3)
        operator.call(SetBool, "/sim_robot/hold_joint_states", SetBool.Request(data=True))
        operator.wait_for(lambda: np.all(np.array(operator.commands[-1][1].data) == 0.0), 5.0,
                          "zero commands after the joint states stopped")
        time.sleep(0.2)  # states still queued in this process are recorded by now
        # Judged by send times: when the last state left the robot, when the first zero
        # command left the deploy node (this test process's own delays do not count).
        with operator.lock:
            last_state_sent = operator.states_sent[-1]
            sent = np.array(operator.commands_sent)
            data = np.array([m.data for _, m in operator.commands])
        after = sent > last_state_sent
        zero_sent = sent[after & ~np.any(data, axis=1)][0]
        speed = np.abs(data[after][0]).max()
        ramp = np.diff(sent[after & (sent <= zero_sent)])
        print("speed at the last joint state %.3f rad/s; first zero command sent %.0f ms after it; "
              "%d commands in between, longest gap %.1f ms"
              % (speed, 1e3 * (zero_sent - last_state_sent), len(ramp) + 1, 1e3 * ramp.max()))
        # The promise is per message, not per wall-clock second (a loaded machine sends fewer
        # messages a second, never more): from the last state to the first zero no more
        # messages than max_stop_time (0.2 s) holds at the control rate.
        assert len(ramp) + 1 <= 200, "%d commands from the last joint state to zero" % (len(ramp) + 1)
        node.wait_for_line("stale joint state", 5.0)
        time.sleep(0.1)  # the simulated controller judges each cycle 50 ms after it ended
        assert operator.reflexes == [], operator.reflexes
        commands = operator.command_array()
        violations = stream_violations(commands, q=operator.states[-1][1].position)
        assert not violations, violations[:5]
    finally:
        node.stop()
        sim.stop()


def test_nan_joint_state_ramps_to_zero_and_reports(operator, reach_policy):
    with deploy_on_states(operator, reach_policy) as (node, states):
        operator.wait_for_commands(50)
        operator.send_target(TARGETS[0])
        operator.wait_for(lambda: np.abs(operator.commands[-1][1].data).max() > 0.05, 10.0,
                          "the arm commanded to move")
        states.position = np.array(READY_POSE) * np.nan
        node.wait_for_line("non-finite joint state", 5.0)
        operator.wait_for(lambda: not np.any(operator.commands[-1][1].data), 5.0, "zero commands")
        operator.wait_for(lambda: any(d.status[0].level == DiagnosticStatus.ERROR
                                      and "non-finite" in d.status[0].message
                                      for d in operator.diagnostics), 3.0, "an ERROR diagnostic")
        violations = stream_violations(operator.command_array())
        assert not violations, violations[:5]


def test_wrong_joint_names_never_move(operator, reach_policy):
    with deploy_on_states(operator, reach_policy, names=joint_names("panda")) as (node, _):
        operator.wait_for_commands(100)
        operator.send_target(TARGETS[0])
        node.wait_for_line("joint_states lacks fr3_joint1", 10.0)
        time.sleep(0.5)
        assert not np.any(operator.command_array()), "commands moved without valid joint states"


def test_out_of_workspace_target_refused(operator, reach_policy):
    with deploy_on_states(operator, reach_policy) as (node, _):
        operator.wait_for_commands(50)
        operator.send_target((1.5, 0.0, 0.3))
        node.wait_for_line("target refused", 10.0)
        operator.send_target((0.45, 0.0, 0.4), frame="world")
        node.wait_for_line("expected 'fr3_link0' or empty", 10.0)
        time.sleep(0.3)
        assert not np.any(operator.command_array()), "the arm moved toward a refused target"


def test_enable_service_and_sigint_ramp_to_zero(operator, reach_policy):
    with deploy_on_states(operator, reach_policy, autostart=False) as (node, _):
        operator.wait_for_commands(50)
        operator.send_target(TARGETS[1])
        time.sleep(0.3)
        assert not np.any(operator.command_array()), "moved before ~/enable"
        assert operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True)).success
        operator.wait_for(lambda: np.abs(operator.commands[-1][1].data).max() > 0.05, 10.0,
                          "motion after ~/enable true")
        operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=False))
        operator.wait_for(lambda: not np.any(operator.commands[-1][1].data), 5.0,
                          "zero commands after ~/enable false")
        operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True))
        operator.wait_for(lambda: np.abs(operator.commands[-1][1].data).max() > 0.05, 10.0,
                          "motion after ~/enable true again")
        assert node.interrupt(10.0) == 0
        time.sleep(0.2)
        assert "stopped, zeros published" in node.output
        commands = operator.command_array()
        assert not np.any(commands[-3:]), "the last commands before exit are not zero"
        violations = stream_violations(commands)
        assert not violations, violations[:5]


def test_enable_refused_while_nobody_subscribes_to_the_commands(operator, reach_policy):
    """No subscriber on the command topic (no controller loaded): ~/enable is refused, saying
    why, /diagnostics reports ERROR and nothing moves; once one subscribes, enable works."""
    topic = "/unheard/commands"
    with deploy_on_states(operator, reach_policy, autostart=False, command_topic=topic) as (node, _):
        node.wait_for_line("motion disabled", 20.0)
        response = operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True),
                                 timeout=10.0)
        assert not response.success and "no subscriber on %s" % topic in response.message
        operator.wait_for(lambda: any(
            s.level == DiagnosticStatus.ERROR and "no subscriber" in s.message
            for msg in list(operator.diagnostics) for s in msg.status), 5.0, "ERROR on /diagnostics")
        heard = []
        operator.record(Float64MultiArray, topic, 10000, heard)
        operator.send_target(TARGETS[0])
        deadline = time.monotonic() + 10.0  # until the node has discovered the subscriber
        while not operator.call(SetBool, "/reach_rl_deploy/enable",
                                SetBool.Request(data=True)).success:
            assert time.monotonic() < deadline, "~/enable still refused with a subscriber"
            time.sleep(0.2)
        operator.wait_for(lambda: heard and np.abs(heard[-1][1].data).max() > 0.05, 10.0,
                          "motion on %s after ~/enable" % topic)


@pytest.mark.parametrize("case", ["missing", "corrupt", "other robot", "other joints",
                                  "unknown robot"])
def test_refuses_to_start_with_a_clear_error(case, reach_policy, tmp_path, ros_context):
    params = {"missing": {"policy": str(tmp_path / "nope.onnx")},
              "corrupt": {"policy": str(tmp_path / "corrupt.onnx")},
              "other robot": {"robot": "panda"},
              "other joints": {"joint_prefix": "left_fr3_joint"},
              "unknown robot": {"robot": "ur5"}}[case]
    expected = {"missing": "does not exist", "corrupt": "not a readable ONNX model",
                "other robot": "franka_description has no panda", "other joints": "expects joints",
                "unknown robot": "expected one of fr3"}[case]
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07 definitely not protobuf" * 10)
    node = deploy(**dict({"policy": reach_policy}, **params))
    try:
        assert node.wait(20.0) == 2
        assert "refusing to start" in node.output and expected in node.output, node.output
    finally:
        node.stop()
