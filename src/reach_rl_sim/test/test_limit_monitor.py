"""Limit monitor: each limit is reported on the right joint, and only when crossed."""
import numpy as np
import pytest

from reach_rl_core.franka_model import FR3, PANDA, READY_POSE, joint_names
from reach_rl_sim.limit_monitor import (ACCELERATION, JERK, POSITION, VELOCITY,
                                           SentStreamMonitor, StreamMonitor, check_limits,
                                           describe_violations)

READY = np.array(READY_POSE)
ZERO = np.zeros(7)
DT = 1e-3


def AT_READY(t):
    """Joint position at time t [s]: the ready pose throughout."""
    return READY


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


def monitor():
    return SentStreamMonitor(StreamMonitor(FR3, joint_names("fr3")))


def test_stream_monitor_keeps_history_only_while_limits_hold():
    m = StreamMonitor(FR3, joint_names("fr3"))
    assert all(m.check(READY, c) is None for c in ramp(5))
    assert "joint_acceleration_limit_violation" in m.check(READY, np.full(7, 1.0))
    assert m.check(READY, ramp(6)[-1]) is None  # judged against the last command that passed


def test_sent_stream_judged_by_send_time_not_arrival():
    """A clean 1 kHz ramp delivered in bursts (a slow reader) passes: cycles come from send times."""
    m = monitor()
    sent = [(0.0005 + k * DT, c) for k, c in enumerate(ramp(40))]
    assert all(m.feed(t, c, AT_READY) is None for t, c in sent)  # fed late and all at once: fine
    assert m.flush(sent[-1][0] + 0.01, AT_READY) is None


def test_sent_stream_catches_a_burst_after_held_cycles():
    """Three ramp messages sent within one cycle after two cycles of none: the controller reads a
    hold and then a triple step, 3 x 2 rad/s^2 / 1 ms = 6000 rad/s^3 > 5000."""
    m = monitor()
    commands = ramp(12)
    times = [0.0005 + k * DT for k in range(8)] + [0.0104, 0.01045, 0.0105, 0.0115]
    errors = [m.feed(t, c, AT_READY) for t, c in zip(times, commands)]
    assert errors[:-1] == [None] * 11
    assert "joint_jerk_limit_violation" in errors[-1]


def test_sent_stream_flush_judges_a_held_step_without_a_newer_message():
    m = monitor()
    assert m.feed(0.0005, ZERO, AT_READY) is None
    assert m.feed(0.0015, one_joint(3, 1.0), AT_READY) is None  # judged only once its cycle is over
    error = m.flush(0.01, AT_READY)
    assert "fr3_joint4" in error and "joint_acceleration_limit_violation" in error


def test_sent_stream_judges_velocity_at_the_cycles_own_position():
    """FR3 joint 7 near its lower limit: each cycle is judged at its own position."""
    near, closer = READY.copy(), READY.copy()
    near[6] = -2.95  # velocity bound there: 0.35 - sqrt(34 * (3.0196 - 2.95)) = -1.19 rad/s
    closer[6] = -3.0  # bound there: -0.47 rad/s

    def q_at(t):
        return near if t < 0.3 else closer

    m = monitor()
    # -0.6 rad/s on joint 7, reached by a 3 rad/s^2 ramp, then held: fine at `near` only.
    commands = [one_joint(6, -0.6 * min(k / 200, 1.0)) for k in range(320)]
    errors = [m.feed(0.0005 + k * DT, c, q_at) for k, c in enumerate(commands)]
    # Message k is read in cycle k + 1 and judged when message k + 1 arrives; cycle 300
    # (t = 0.3 s) is the first at `closer`.
    assert errors[:300] == [None] * 300
    assert "joint_velocity_limit_violation on fr3_joint7" in errors[300]
