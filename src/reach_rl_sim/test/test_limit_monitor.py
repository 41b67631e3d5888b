"""Limit monitor: each limit is reported on the right joint, and only when crossed."""
import numpy as np
import pytest

from reach_rl_core.franka_model import FR3, PANDA, READY_POSE, joint_names
from reach_rl_sim.limit_monitor import (ACCELERATION, JERK, POSITION, VELOCITY, StreamMonitor,
                                        check_limits, describe_violations)

READY = np.array(READY_POSE)
ZERO = np.zeros(7)
DT = 1e-3


def one_joint(j, value):
    v = np.zeros(7)
    v[j] = value
    return v


@pytest.mark.parametrize("limits", [FR3, PANDA])
def test_smooth_motion_inside_limits_passes(limits):
    # 0.5 rad/s reached with 1 rad/s^2 and 100 rad/s^3: nowhere near any limit.
    assert check_limits(limits, READY, np.full(7, 0.5), np.full(7, 0.499), np.full(7, 0.498)) == []
    assert check_limits(limits, READY, ZERO, ZERO, ZERO) == []


def test_velocity_violation_names_joint_and_bound():
    violations = check_limits(FR3, READY, one_joint(3, 2.71), one_joint(3, 2.71), one_joint(3, 2.71))
    assert [(v.limit, v.joint) for v in violations] == [(VELOCITY, 3)]
    text = describe_violations(violations, joint_names("fr3"))
    assert text == "joint_velocity_limit_violation on fr3_joint4: 2.71 rad/s > 2.62"
    # Negative side reports the lower bound.
    violations = check_limits(PANDA, READY, one_joint(0, -2.2), one_joint(0, -2.2), one_joint(0, -2.2))
    assert violations[0].describe(joint_names("panda")) == \
        "joint_velocity_limit_violation on panda_joint1: -2.2 rad/s < -2.175"


def test_fr3_velocity_bound_depends_on_position():
    q = READY.copy()
    q[0] = FR3.pos_max[0] - 0.01  # upper bound there: -0.3 + sqrt(12 * 0.0164) = 0.144 rad/s
    v = one_joint(0, 0.3)
    assert [(x.limit, x.joint) for x in check_limits(FR3, q, v, v, v)] == [(VELOCITY, 0)]
    assert check_limits(FR3, q, -v, -v, -v) == []  # away from the limit: fine
    assert check_limits(PANDA, np.clip(q, PANDA.pos_min, PANDA.pos_max), v, v, v) == []


def test_position_violation():
    q = READY.copy()
    q[5] = FR3.pos_min[5] - 1e-4
    violations = check_limits(FR3, q, ZERO, ZERO, ZERO)
    assert [(v.limit, v.joint) for v in violations] == [(POSITION, 5)]
    assert "fr3_joint6" in violations[0].describe(joint_names("fr3"))


def test_acceleration_and_jerk_from_held_commands():
    # A step of 1 rad/s in one cycle: 1000 rad/s^2 and 1e6 rad/s^3.
    violations = check_limits(FR3, READY, one_joint(1, 1.0), ZERO, ZERO)
    assert {(v.limit, v.joint) for v in violations} == {(ACCELERATION, 1), (JERK, 1)}
    accel = [v for v in violations if v.limit == ACCELERATION][0]
    assert accel.value == pytest.approx(1000.0) and accel.bound == 10.0
    # Constant acceleration of 9 rad/s^2: acceleration fine, no jerk.
    assert check_limits(FR3, READY, one_joint(2, 0.018), one_joint(2, 0.009), ZERO) == []
    # Jerk only: acceleration jumps from 0 to 6 rad/s^2 in one cycle (6000 rad/s^3 > 5000).
    violations = check_limits(FR3, READY, one_joint(4, 0.006), ZERO, ZERO)
    assert [(v.limit, v.joint) for v in violations] == [(JERK, 4)]
    assert violations[0].value == pytest.approx(6000.0)
    # Just inside: 4.9 rad/s^2 in one cycle is 4900 rad/s^3.
    assert check_limits(FR3, READY, one_joint(4, 0.0049), ZERO, ZERO) == []


def test_non_finite_command_is_a_violation():
    violations = check_limits(FR3, READY, one_joint(6, np.nan), ZERO, ZERO)
    assert {v.limit for v in violations} == {VELOCITY, ACCELERATION, JERK}
    assert all(v.joint == 6 for v in violations)


def ramp(n, accel=2.0, dt=DT):
    """Commands of a constant-acceleration ramp on every joint, one per cycle [rad/s]."""
    return [np.full(7, accel * dt * (k + 1)) for k in range(n)]


def test_stream_monitor_keeps_history_only_while_limits_hold():
    m = StreamMonitor(FR3, joint_names("fr3"))
    assert all(m.check(READY, c) is None for c in ramp(5))
    assert "joint_acceleration_limit_violation" in m.check(READY, np.full(7, 1.0))
    assert m.check(READY, ramp(6)[-1]) is None  # judged against the last command that passed

