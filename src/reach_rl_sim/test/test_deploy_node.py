"""deploy_node's topic path over real DDS: the node runs as its own process (interface
ros2_control) and drives either the kinematic simulated Franka (reach_rl_sim.sim_robot_node,
another process, behind its joint_trajectory_controller model) or joint states this test
publishes; the test records every trajectory.

With the session's policy (policy_fixtures.reach_policy: trained by train_node as its own
process, the trainer as its child) the first test is the whole chain end to end: train node ->
policy file -> deploy node + simulated Franka -> three targets within 1 cm, no reflex.

The trajectories a test records are replayed through the joint_trajectory_controller model at
1 kHz (controller_replay) and that command stream is judged against the FR3's limits, besides
the simulated Franka's own judgement of the stream it ran (a reflex on /sim_robot/reflex).
"""
import contextlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from controller_replay import violations
from deploy_operator import JOINT_STATES_TOPIC, NAMES, Operator, StatePublisher, max_speed
from ros_harness import NodeProcess, ros_context_fixture, test_node_name

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from reach_rl_core.franka_model import READY_POSE, joint_names  # noqa: E402
from reach_rl_sim.trajectory_topic import TRAJECTORY_TOPIC, seconds  # noqa: E402

pytestmark = pytest.mark.ros

TARGETS = [(0.45, 0.20, 0.35), (0.50, -0.20, 0.50), (0.35, 0.05, 0.25)]
AT_REST = 1e-3  # rad/s: a joint slower than this rests (the P term closes the last micro-radians)

ros_context = pytest.fixture(scope="module")(ros_context_fixture)


@pytest.fixture
def operator(ros_context, request):
    node = Operator(ros_context, test_node_name(request))
    yield node
    node.close()


def deploy(policy, **params):
    defaults = {"policy": policy, "robot": "fr3", "autostart": True, "interface": "ros2_control",
                "trajectory_topic": TRAJECTORY_TOPIC, "joint_states_topic": JOINT_STATES_TOPIC}
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


@contextlib.contextmanager
def deploy_on_sim(operator, policy, **params):
    """deploy_node driving sim_robot_node, both stopped after. Joint states at 250 Hz, not every
    1 ms cycle as franka_ros2 publishes them: the node reads one per 20 ms policy tick, and this
    test's own process records them in Python."""
    sim = NodeProcess("reach_rl_sim.sim_robot_node", [("robot", "fr3"), ("joint_state_rate", 250.0)])
    node = deploy(policy, **params)
    try:
        operator.wait_for(lambda: operator.states, 20.0, "joint states from the simulated Franka")
        yield node, sim
    finally:
        node.stop()
        sim.stop()


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


def assert_brought_to_rest(operator, since):
    """The recorded trajectories, replayed at 1 kHz, stay within the FR3's limits, the arm was
    moving at ``since`` [s, system clock] and rests from the end of the last trajectory on."""
    run = operator.replay()
    problems = violations(run)
    assert not problems, problems[:5]
    speed = np.abs(run.commands[np.searchsorted(run.times, since)]).max()
    assert speed > 0.05, "the arm was not moving (%.3f rad/s), nothing to bring to rest" % speed
    with operator.lock:
        last = operator.trajectories[-1][1]
    assert run.at_rest_from(seconds(last.header.stamp) + seconds(last.points[-1].time_from_start))


def assert_arm_rests(operator, timeout=5.0):
    """The simulated Franka's joint states come to rest."""
    operator.wait_for(lambda: np.abs(operator.latest_state().velocity).max() < AT_REST, timeout,
                      "the simulated arm at rest")


@pytest.mark.slow
def test_reaches_three_targets_then_stops_when_joint_states_stop(operator, reach_policy):
    """Deploy node + simulated Franka: three successive targets within 1 cm, no reflex; when the
    robot's joint states stop while the arm moves, the trajectories bring it to rest."""
    with deploy_on_sim(operator, reach_policy) as (node, _):
        reach_each(operator, TARGETS)
        assert operator.reflexes == [], operator.reflexes
        operator.send_target((0.55, 0.25, 0.45))
        operator.wait_for_motion("motion toward the fourth target")
        time.sleep(0.2)
        operator.call(SetBool, "/sim_robot/hold_joint_states", SetBool.Request(data=True))
        node.wait_for_line("stale joint state", 5.0)
        operator.wait_until_quiet("no more trajectories after the joint states stopped")
        with operator.lock:
            last_state_sent = operator.states_sent[-1]
        assert_brought_to_rest(operator, since=last_state_sent)
        # The simulated arm rested all along since: its first state after the hold says so.
        count = len(operator.states)
        operator.call(SetBool, "/sim_robot/hold_joint_states", SetBool.Request(data=False))
        operator.wait_for(lambda: len(operator.states) > count, 5.0, "joint states again")
        with operator.lock:
            resumed = operator.states[count][1]
        assert np.abs(resumed.velocity).max() < AT_REST, resumed.velocity
        assert operator.reflexes == [], operator.reflexes


def test_nan_joint_state_brings_the_arm_to_rest_and_reports(operator, reach_policy):
    with deploy_on_states(operator, reach_policy) as (node, states):
        operator.send_target(TARGETS[0])
        operator.wait_for_motion("the arm commanded to move")
        time.sleep(0.2)
        nan_at = time.time()
        states.position = np.array(READY_POSE) * np.nan
        node.wait_for_line("non-finite joint state", 5.0)
        operator.wait_until_quiet("no more trajectories after the NaN state")
        operator.wait_for(lambda: any(d.status[0].level == DiagnosticStatus.ERROR
                                      and "non-finite" in d.status[0].message
                                      for d in operator.diagnostics), 3.0, "an ERROR diagnostic")
        assert_brought_to_rest(operator, since=nan_at)


def fifo_permitted() -> bool:
    """Whether a process started from here may use SCHED_FIFO (root or CAP_SYS_NICE)."""
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def thread_priorities(pid):
    """{(scheduler, priority)} of every thread of process ``pid``."""
    tids = [int(tid) for tid in os.listdir("/proc/%d/task" % pid)]
    return {(os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority) for tid in tids}


@pytest.mark.parametrize("rt_priority, expected", [(-1, 40), (0, 0)])
def test_every_thread_runs_at_the_topic_paths_priority(operator, reach_policy, rt_priority,
                                                       expected):
    """-1 is the interface's SCHED_FIFO 40 for every thread (DDS's included), or a warning
    where the privilege is missing; 0 leaves the node with the ordinary scheduler."""
    with deploy_on_states(operator, reach_policy, rt_priority=rt_priority) as (node, _):
        node.wait_for_line("watchdog: no target", 20.0)
        if expected and not fifo_permitted():
            assert "no SCHED_FIFO 40 for the deploy node" in node.output
            expected = 0
        assert thread_priorities(node.process.pid) == {
            (os.SCHED_FIFO, expected) if expected else (os.SCHED_OTHER, 0)}


def test_wrong_joint_names_never_move(operator, reach_policy):
    with deploy_on_states(operator, reach_policy, names=joint_names("panda")) as (node, _):
        node.wait_for_line("joint_states lacks fr3_joint1", 20.0)
        operator.send_target(TARGETS[0])
        node.wait_for_line("target (0.450, 0.200, 0.350) m", 10.0)
        time.sleep(0.5)
        assert not operator.moved(), "a trajectory moved the arm without valid joint states"


def test_out_of_workspace_target_refused(operator, reach_policy):
    with deploy_on_states(operator, reach_policy) as (node, _):
        node.wait_for_line("watchdog: no target", 20.0)
        operator.send_target((1.5, 0.0, 0.3))
        node.wait_for_line("target refused", 10.0)
        operator.send_target((0.45, 0.0, 0.4), frame="world")
        node.wait_for_line("expected 'fr3_link0' or empty", 10.0)
        time.sleep(0.3)
        assert not operator.moved(), "the arm moved toward a refused target"


def test_enable_service_and_sigint_bring_the_arm_to_rest(operator, reach_policy):
    with deploy_on_sim(operator, reach_policy, autostart=False) as (node, sim):
        node.wait_for_line("watchdog: disabled", 20.0)
        operator.send_target(TARGETS[1])
        time.sleep(0.3)
        assert not operator.moved(), "moved before ~/enable"
        assert operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True)).success
        operator.wait_for_motion("motion after ~/enable true")
        time.sleep(0.2)
        disabled_at = time.time()
        operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=False))
        operator.wait_until_quiet("no more trajectories after ~/enable false")
        assert_brought_to_rest(operator, since=disabled_at)
        assert_arm_rests(operator)
        operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True))
        operator.wait_for_motion("motion after ~/enable true again")
        time.sleep(0.2)
        interrupted_at = time.time()
        assert node.interrupt(10.0) == 0
        exited_at = time.time()
        assert "stopped, zeros published" in node.output
        # The node exits once the reference of its last trajectory rests, not before.
        with operator.lock:
            last = operator.trajectories[-1][1]
        end = seconds(last.header.stamp) + seconds(last.points[-1].time_from_start)
        assert end < exited_at, "exited %.3f s before its last trajectory ends" % (end - exited_at)
        assert_brought_to_rest(operator, since=interrupted_at)
        assert_arm_rests(operator)
        assert operator.reflexes == [], operator.reflexes


def test_enable_refused_while_nobody_subscribes_to_the_trajectories(operator, reach_policy):
    """No subscriber on the trajectory topic (no controller loaded): ~/enable is refused, saying
    why, /diagnostics reports ERROR and nothing moves; once one subscribes, enable works."""
    topic = "/unheard/joint_trajectory"
    with deploy_on_states(operator, reach_policy, autostart=False,
                          trajectory_topic=topic) as (node, _):
        node.wait_for_line("motion disabled", 20.0)
        response = operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True),
                                 timeout=10.0)
        assert not response.success and "no subscriber on %s" % topic in response.message
        operator.wait_for(lambda: any(
            s.level == DiagnosticStatus.ERROR and "no subscriber" in s.message
            for msg in list(operator.diagnostics) for s in msg.status), 5.0,
            "ERROR on /diagnostics")
        heard = []
        operator.record(JointTrajectory, topic, 100, heard)
        operator.send_target(TARGETS[0])
        deadline = time.monotonic() + 10.0  # until the node has discovered the subscriber
        while not operator.call(SetBool, "/reach_rl_deploy/enable",
                                SetBool.Request(data=True)).success:
            assert time.monotonic() < deadline, "~/enable still refused with a subscriber"
            time.sleep(0.2)
        operator.wait_for(lambda: heard and max_speed(heard[-1][1]) > 0.05, 10.0,
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
