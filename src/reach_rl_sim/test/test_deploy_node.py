"""deploy_node's topic path over real DDS: the node runs as its own process and drives either
the kinematic simulated Franka (reach_rl_sim.sim_robot_node, another process) or joint states
this test publishes; the test reads every command.

With the session's policy (policy_fixtures.reach_policy: trained by train_node as its own
process, the trainer as its child) the first test is the whole chain end to end: train node ->
policy file -> deploy node + simulated Franka -> three targets within 1 cm, no reflex. On
franka-sim through franka_ros2's stand-in, three 1 kHz Python processes share this 2-core
machine and lose cycles (measured by bench/deploy_bench.py --franka-sim, not asserted here).

Every command stream the test receives is judged as Franka's 1 kHz controller would read it,
message by message (``limit_monitor.StreamMonitor``), besides the simulated Franka's own checks.
"""
import contextlib
import time

import numpy as np
import pytest
from ros_harness import NodeProcess, ros_context_fixture, test_node_name

from deploy_operator import NAMES, Operator, StatePublisher, stream_violations  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from reach_rl_core.franka_model import READY_POSE, joint_names  # noqa: E402

pytestmark = pytest.mark.ros

TARGETS = [(0.45, 0.20, 0.35), (0.50, -0.20, 0.50), (0.35, 0.05, 0.25)]

ros_context = pytest.fixture(scope="module")(ros_context_fixture)


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


def reach_each(operator, targets):
    """Send each target in turn; assert the TCP ends within 1 cm of it [m, base frame]."""
    for target in targets:
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


def print_timing(operator, since_sent):
    """The command period (by DDS send times since ``since_sent``) and the ticks on joint states:
    figures of bench/deploy_bench.py, not judges here (on a loaded 2-core machine three 1 kHz
    processes share the CPU and late states fall back to the clock)."""
    with operator.lock:
        sent = np.array(operator.commands_sent)
        locked = [float(kv.value) for d in operator.diagnostics for kv in d.status[0].values
                  if kv.key == "ticks on joint states [%]"]
    periods = np.diff(sent[sent >= since_sent])
    print("command period median %.3f ms, p99 %.3f ms" % (1e3 * np.median(periods),
                                                          1e3 * np.percentile(periods, 99)))
    print("ticks on joint states per diagnostics window [%%]: %s" % locked)


def commands_until_zero_after_states_stop(operator):
    """Hold the robot's joint states while the arm moves; the number of commands from the last
    state to the first zero command, judged by send times (this process's delays do not count)."""
    operator.send_target((0.55, 0.25, 0.45))
    time.sleep(0.3)
    operator.call(SetBool, "/sim_robot/hold_joint_states", SetBool.Request(data=True))
    operator.wait_for(lambda: np.all(np.array(operator.commands[-1][1].data) == 0.0), 5.0,
                      "zero commands after the joint states stopped")
    time.sleep(0.2)  # states still queued in this process are recorded by now
    with operator.lock:
        last_state_sent = operator.states_sent[-1]
        sent = np.array(operator.commands_sent)
        data = np.array([m.data for _, m in operator.commands])
    after = sent > last_state_sent
    zero_sent = sent[after & ~np.any(data, axis=1)][0]
    ramp = np.diff(sent[after & (sent <= zero_sent)])
    print("speed at the last joint state %.3f rad/s; first zero command sent %.0f ms after it; "
          "%d commands in between, longest gap %.1f ms"
          % (np.abs(data[after][0]).max(), 1e3 * (zero_sent - last_state_sent), len(ramp) + 1,
             1e3 * ramp.max()))
    return len(ramp) + 1


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
        reach_each(operator, TARGETS)
        assert operator.reflexes == [], operator.reflexes
        print_timing(operator, start_sent)
        # The promise is per message, not per wall-clock second (a loaded machine sends fewer
        # messages a second, never more): from the last state to the first zero no more
        # messages than max_stop_time (0.2 s) holds at the control rate.
        count = commands_until_zero_after_states_stop(operator)
        assert count <= 200, "%d commands from the last joint state to zero" % count
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
    with deploy_on_states(operator, reach_policy, autostart=False,
                          command_topic=topic) as (node, _):
        node.wait_for_line("motion disabled", 20.0)
        response = operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True),
                                 timeout=10.0)
        assert not response.success and "no subscriber on %s" % topic in response.message
        operator.wait_for(lambda: any(
            s.level == DiagnosticStatus.ERROR and "no subscriber" in s.message
            for msg in list(operator.diagnostics) for s in msg.status), 5.0,
            "ERROR on /diagnostics")
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
