"""DeployController without ROS: joint-state reordering, watchdogs, one policy step per tick, and
that its commands, sent as the topic path sends them, make a reference that keeps the FR3's
limits and the filter's bounds when sampled every 1 ms (trajectory_judge), on the committed FR3
policy (policies/fr3_ros2_control.onnx)."""
import os

import numpy as np
import pytest

ros2_control = pytest.importorskip("reach_rl_deploy.interfaces.ros2_control",
                                   reason="the topic path's messages need ROS 2")

from deploy_operator import Sent  # noqa: E402
from trajectory_judge import reference, violations  # noqa: E402

from reach_rl_core.command_trajectory import TrajectoryStream  # noqa: E402
from reach_rl_core.filter_limits import ROS2_CONTROL, FilterLimits, interface_defaults  # noqa: E402
from reach_rl_core.franka_model import FR3, READY_POSE, joint_names  # noqa: E402
from reach_rl_deploy import deploy_controller as dc  # noqa: E402
from reach_rl_deploy.targets import Target  # noqa: E402
from reach_rl_deploy.deploy_controller import (DeployController, JointSample,  # noqa: E402
                                               reorder_joint_state, watchdog)
from reach_rl_deploy.policy_runtime import Policy  # noqa: E402

POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies",
                      "fr3_ros2_control.onnx")  # the committed FR3 policy (ros2_control)
NAMES = joint_names("fr3")
READY = np.array(READY_POSE)
# m: from READY the policy speeds up at the filter's 3 rad/s^2
TARGET = Target(np.array([0.5, 0.2, 0.3]))
HOLD = interface_defaults(ROS2_CONTROL).command_hold
LIMITS = FilterLimits.for_interface(FR3, ROS2_CONTROL, control_rate=50.0, command_hold=HOLD)
DT = LIMITS.dt  # s, one policy step
T0 = 1000.0  # s, the first tick's time
MOVING = 0.05  # rad/s: a command faster than this moves the arm


@pytest.fixture(scope="module")
def policy():
    """The committed FR3 policy (interface ros2_control)."""
    return Policy(POLICY)


@pytest.fixture(scope="module")
def nan_policy(tmp_path_factory):
    """A contract-2 file whose output is NaN: joint_vel_cmd = joint_pos * NaN, with the
    committed policy's metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nan = helper.make_tensor("nan", TensorProto.FLOAT, [1], [float("nan")])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["joint_pos", "nan"], ["joint_vel_cmd"])], "nan_policy",
        [helper.make_tensor_value_info("joint_pos", TensorProto.FLOAT, ["batch", 7])],
        [helper.make_tensor_value_info("joint_vel_cmd", TensorProto.FLOAT, ["batch", 7])], [nan])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.extend(onnx.load(POLICY).metadata_props)
    path = str(tmp_path_factory.mktemp("nan") / "nan.onnx")
    onnx.save(model, path)
    return Policy(path)


def controller(policy):
    return DeployController(policy, LIMITS, state_timeout=0.02)


def run(ctrl, ticks, sample_at, enabled=True, target=TARGET, start=T0):
    """``ticks`` policy steps; ``sample_at(t)`` gives the joint sample at time t. Returns the
    tick times, the commands [ticks, 7] and the statuses."""
    times = start + DT * np.arange(ticks)
    commands, statuses = [], []
    for t in times:
        commands.append(ctrl.tick(sample_at(t), target, enabled, t).copy())
        statuses.append(ctrl.status)
    return times, np.array(commands), statuses


def fresh(q=READY):
    return lambda t: JointSample(np.array(q, float), np.zeros(7), received=t)


def sent_as_trajectories(times, commands, q=READY):
    """The messages the topic path sends for ``commands`` [rad/s] at ``times`` [s] with the arm
    measured at ``q``: stamped ``STAMP_BACKDATE`` before their send time, none while the command
    is zero and the reference rests."""
    backdate = ros2_control.STAMP_BACKDATE
    stream = TrajectoryStream(LIMITS.accel, LIMITS.jerk, HOLD, ros2_control.KNOT_DT,
                              takeover_margin=DT + backdate)
    messages = []
    for t, command in zip(times, commands):
        reference_now = stream.reference(t)
        resting = reference_now is None or not (np.any(reference_now.velocity)
                                                or np.any(reference_now.acceleration))
        if np.any(command) or not resting:
            messages.append(Sent(t, t - backdate, stream.next(t - backdate, command, q)))
    return messages


def test_reorder_picks_arm_joints_by_name_and_ignores_fingers():
    names = ["fr3_finger_joint1"] + list(reversed(NAMES))
    position = [0.04] + list(range(7, 0, -1))
    q, dq = reorder_joint_state(names, position, [0.0] * 8, NAMES)
    np.testing.assert_array_equal(q, np.arange(1, 8))
    with pytest.raises(ValueError, match="lacks fr3_joint1"):
        reorder_joint_state(joint_names("panda"), [0.0] * 7, [0.0] * 7, NAMES)
    with pytest.raises(ValueError, match="7 names but 6 positions"):
        reorder_joint_state(NAMES, [0.0] * 6, [0.0] * 7, NAMES)


def test_watchdog_states():
    ok = JointSample(READY, np.zeros(7), received=10.0, stamp=1000.0)
    assert watchdog(None, 10.0, 0.02) == dc.NO_STATE
    assert watchdog(ok, 10.01, 0.02) == dc.OK
    assert watchdog(ok, 10.03, 0.02) == dc.STALE_STATE
    assert watchdog(ok, 10.0, 0.02, wall_now=1000.01) == dc.OK
    assert watchdog(ok, 10.0, 0.02, wall_now=1000.05) == dc.STALE_STATE  # queued, then delivered
    assert watchdog(ok, 10.0, 0.02, wall_now=999.9) == dc.STALE_STATE  # stamped in the future
    bad = JointSample(READY * np.nan, np.zeros(7), received=10.0)
    assert watchdog(bad, 10.0, 0.02) == dc.NONFINITE_STATE


def test_policy_runs_every_tick_and_its_stream_stays_within_limits(policy):
    ctrl = controller(policy)
    inferences = 0
    commands = []
    times = T0 + DT * np.arange(10)  # 0.2 s: the arm, measured at READY, stays well inside its limits
    for t in times:
        commands.append(ctrl.tick(fresh()(t), TARGET, True, t).copy())
        inferences += ctrl.last_inference_s > 0
        ctrl.last_inference_s = 0.0
    assert inferences == 10
    assert ctrl.status == dc.OK
    assert np.abs(commands[-1]).max() > MOVING, "the policy never moved the arm"
    problems = violations(reference(sent_as_trajectories(times, commands)), LIMITS)
    assert not problems, problems[:3]


def test_a_filter_faster_than_the_policy_is_refused(policy):
    with pytest.raises(ValueError, match="once per policy step"):
        DeployController(policy, FilterLimits.for_interface(FR3, ROS2_CONTROL), 0.02)


@pytest.mark.parametrize("fault", ["disabled", "stale", "nan state", "no target"])
def test_any_doubt_brings_the_arm_smoothly_to_rest(policy, fault):
    ctrl = controller(policy)
    times, moving, _ = run(ctrl, 10, fresh())
    assert np.abs(moving[-1]).max() > MOVING
    t0 = times[-1] + DT
    if fault == "disabled":
        later, after, statuses = run(ctrl, 100, fresh(), enabled=False, start=t0)
    elif fault == "stale":
        frozen = fresh()(t0 - 2 * DT)  # the last state came two ticks ago
        later, after, statuses = run(ctrl, 100, lambda t: frozen, start=t0)
    elif fault == "nan state":
        later, after, statuses = run(ctrl, 100, fresh(READY * np.nan), start=t0)
    else:
        later, after, statuses = run(ctrl, 100, fresh(), target=None, start=t0)
    expected = {"disabled": dc.DISABLED, "stale": dc.STALE_STATE, "nan state": dc.NONFINITE_STATE,
                "no target": dc.NO_TARGET}[fault]
    assert set(statuses) == {expected}
    assert ctrl.stopped() and not np.any(after), "a command after %s" % fault
    messages = sent_as_trajectories(np.concatenate([times, later]),
                                    np.concatenate([moving, after]))
    judged = reference(messages)
    problems = violations(judged, LIMITS)
    assert not problems, problems[:3]
    last = messages[-1]
    assert last.sent >= t0, "no trajectory to rest was sent"
    assert judged.at_rest_from(last.stamp + last.trajectory.duration)
    print("%s: at rest %.2f s after, from %.2f rad/s" % (
        fault, last.stamp + last.trajectory.duration - t0, np.abs(moving[-1]).max()))


def test_non_finite_policy_output_stops(nan_policy):
    ctrl = controller(nan_policy)
    _, commands, statuses = run(ctrl, 10, fresh())
    assert statuses[0] == dc.NONFINITE_POLICY
    assert not np.any(commands)
