"""deploy_node's topic path over real DDS, fed by joint states this test publishes: the node runs
as its own process (interface ros2_control) with the committed FR3 policy
(policies/fr3_ros2_control.onnx), and the test records every trajectory it sends.

The trajectories a test records are judged by the reference they make, sampled every 1 ms with
reach_rl_core's own splines (trajectory_judge), against the FR3's limits and the filter's
bounds. reach_rl_sim's tests drive the simulated robots with the node.
"""
import contextlib
import functools
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import trajectory_judge
from deploy_operator import (MOVING, NAMES, StatePublisher, assert_brought_to_rest, deploy_node,
                             max_speed, operator_fixture)
from ros_harness import ros_context_fixture

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from reach_rl_core.filter_limits import ROS2_CONTROL, FilterLimits  # noqa: E402
from reach_rl_core.franka_model import FR3, READY_POSE, joint_names  # noqa: E402

pytestmark = pytest.mark.ros

POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies",
                      "fr3_ros2_control.onnx")  # the committed FR3 policy (ros2_control)
TARGET = (0.45, 0.20, 0.35)  # m, base frame
# The node's filter: the topic path's defaults at the policy's 50 Hz.
LIMITS = FilterLimits.for_interface(FR3, ROS2_CONTROL, control_rate=50.0, command_hold=-1.0)
judge = functools.partial(trajectory_judge.judge, limits=LIMITS)

ros_context = pytest.fixture(scope="module")(ros_context_fixture)
operator = pytest.fixture(operator_fixture)


@contextlib.contextmanager
def deploy_on_states(operator, policy, names=NAMES, **params):
    """deploy_node fed by the test's joint states (the ready pose, ``names``); yields (node,
    states), both stopped after."""
    node = deploy_node(policy, **params)
    states = StatePublisher(operator, READY_POSE, names=names)
    try:
        yield node, states
    finally:
        states.stop()
        node.stop()


def test_nan_joint_state_brings_the_arm_to_rest_and_reports(operator):
    with deploy_on_states(operator, POLICY) as (node, states):
        operator.send_target(TARGET)
        operator.wait_for_motion("the arm commanded to move")
        time.sleep(0.2)
        nan_at = time.time()
        states.position = np.array(READY_POSE) * np.nan
        node.wait_for_line("non-finite joint state", 5.0)
        operator.wait_until_quiet("no more trajectories after the NaN state")
        operator.wait_for(lambda: any(d.status[0].level == DiagnosticStatus.ERROR
                                      and "non-finite" in d.status[0].message
                                      for d in operator.diagnostics), 3.0, "an ERROR diagnostic")
        assert_brought_to_rest(operator, nan_at, judge)


def fifo_permitted() -> bool:
    """Whether a process started from here may use SCHED_FIFO (root or CAP_SYS_NICE)."""
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def thread_priorities(pid):
    """{(scheduler, priority)} of every thread of process ``pid``."""
    tids = [int(tid) for tid in os.listdir("/proc/%d/task" % pid)]
    return {(os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority) for tid in tids}


@pytest.mark.parametrize("rt_priority, expected", [(-1, 40), (0, 0)])
def test_every_thread_runs_at_the_topic_paths_priority(operator, rt_priority, expected):
    """-1 is the interface's SCHED_FIFO 40 for every thread (DDS's included), or a warning
    where the privilege is missing; 0 leaves the node with the ordinary scheduler."""
    with deploy_on_states(operator, POLICY, rt_priority=rt_priority) as (node, _):
        node.wait_for_line("watchdog: no target", 20.0)
        if expected and not fifo_permitted():
            assert "no SCHED_FIFO 40 for the deploy node" in node.output
            expected = 0
        assert thread_priorities(node.process.pid) == {
            (os.SCHED_FIFO, expected) if expected else (os.SCHED_OTHER, 0)}


def test_wrong_joint_names_never_move(operator):
    with deploy_on_states(operator, POLICY, names=joint_names("panda")) as (node, _):
        node.wait_for_line("joint_states lacks fr3_joint1", 20.0)
        operator.send_target(TARGET)
        node.wait_for_line("target (0.450, 0.200, 0.350) m", 10.0)
        time.sleep(0.5)
        assert not operator.moved(), "a trajectory moved the arm without valid joint states"


def test_out_of_workspace_target_refused(operator):
    with deploy_on_states(operator, POLICY) as (node, _):
        node.wait_for_line("watchdog: no target", 20.0)
        operator.send_target((1.5, 0.0, 0.3))
        node.wait_for_line("target refused", 10.0)
        operator.send_target((0.45, 0.0, 0.4), frame="world")
        node.wait_for_line("expected 'fr3_link0' or empty", 10.0)
        time.sleep(0.3)
        assert not operator.moved(), "the arm moved toward a refused target"


def test_enable_refused_while_nobody_subscribes_to_the_trajectories(operator):
    """No subscriber on the trajectory topic (no controller loaded): ~/enable is refused, saying
    why, /diagnostics reports ERROR and nothing moves; once one subscribes, enable works."""
    topic = "/unheard/joint_trajectory"
    with deploy_on_states(operator, POLICY, autostart=False, trajectory_topic=topic) as (node, _):
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
        operator.send_target(TARGET)
        deadline = time.monotonic() + 10.0  # until the node has discovered the subscriber
        while not operator.call(SetBool, "/reach_rl_deploy/enable",
                                SetBool.Request(data=True)).success:
            assert time.monotonic() < deadline, "~/enable still refused with a subscriber"
            time.sleep(0.2)
        operator.wait_for(lambda: heard and max_speed(heard[-1][1]) > MOVING, 10.0,
                          "motion on %s after ~/enable" % topic)


@pytest.mark.parametrize("case", ["missing", "corrupt", "other robot", "other joints",
                                  "unknown robot"])
def test_refuses_to_start_with_a_clear_error(case, tmp_path, ros_context):
    params = {"missing": {"policy": str(tmp_path / "nope.onnx")},
              "corrupt": {"policy": str(tmp_path / "corrupt.onnx")},
              "other robot": {"robot": "panda"},
              "other joints": {"joint_prefix": "left_fr3_joint"},
              "unknown robot": {"robot": "ur5"}}[case]
    expected = {"missing": "does not exist", "corrupt": "not a readable ONNX model",
                "other robot": "franka_description has no panda", "other joints": "expects joints",
                "unknown robot": "expected one of fr3"}[case]
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07 definitely not protobuf" * 10)
    node = deploy_node(**dict({"policy": POLICY}, **params))
    try:
        assert node.wait(20.0) == 2
        assert "refusing to start" in node.output and expected in node.output, node.output
    finally:
        node.stop()
