"""The filter's limits per deploy interface (reach_rl_core.filter_limits): the acceleration bound
that covers a late message, the libfranka interface's, the stop-time speed cap, and -1 read as
the interface's setting."""
import numpy as np
import pytest

from reach_rl_core.filter_limits import (INTERFACES, LIBFRANKA, ROS2_CONTROL, STREAM_SLOWDOWN,
                                         FilterLimits, acceleration_bound, stop_time_speed_cap)
from reach_rl_core.franka_model import FR3, PANDA, READY_POSE
from reach_rl_core.safety_filter import velocity_goal_bounds

ROBOT_LIMITS = {"fr3": FR3, "panda": PANDA}
DT = 1e-3


def test_acceleration_bound_covers_one_late_message():
    # FR3 at 1 kHz: min(0.2 * 10, 0.4 * 5000 * 0.001) = 2.0 rad/s^2 on every joint.
    np.testing.assert_allclose(acceleration_bound(FR3.acc_max, FR3.jerk_max, DT), 2.0)
    a = acceleration_bound(PANDA.acc_max, PANDA.jerk_max, DT)
    # Accelerations a, 0, 2a at the controller: jerk 2a/dt and acceleration 2a within the limits.
    assert np.all(2 * a / DT <= np.array(PANDA.jerk_max))
    assert np.all(2 * a <= np.array(PANDA.acc_max))
    # At a slower stream the fraction of acc_max binds.
    np.testing.assert_allclose(acceleration_bound(FR3.acc_max, FR3.jerk_max, 1e-2), 2.0)
    np.testing.assert_allclose(acceleration_bound(FR3.acc_max, FR3.jerk_max, 1e-4), 0.2)


@pytest.mark.parametrize("robot", ["fr3", "panda"])
def test_libfranka_acceleration_covers_a_command_one_cycle_late(robot):
    # libfranka: a command lands at most one cycle late (later ones are withheld), stepping the
    # acceleration by A on top of the filter's own jerk J: A / dt + J within 0.9 jerk_max.
    limits = ROBOT_LIMITS[robot]
    libfranka = FilterLimits.for_interface(limits, LIBFRANKA)
    assert np.all(libfranka.accel / DT + libfranka.jerk <= 0.9 * np.array(limits.jerk_max) + 1e-9)
    assert np.all(libfranka.accel <= np.array(limits.acc_max))
    # Twice the topic path's acceleration (FR3: 4 rad/s^2 against 2).
    topic_path = FilterLimits.for_interface(limits, ROS2_CONTROL)
    np.testing.assert_allclose(libfranka.accel, 2 * topic_path.accel)


def test_stop_time_cap_off_and_impossible():
    accel, jerk = np.full(7, 2.0), np.full(7, 500.0)
    assert np.all(np.isinf(stop_time_speed_cap(accel, jerk, DT, 0.0, 0.02)))
    np.testing.assert_allclose(stop_time_speed_cap(accel, jerk, DT, 0.2, 0.02),
                               2.0 * ((0.2 - 0.02) / STREAM_SLOWDOWN - 2 * 2.0 / 500.0 - 4 * DT))
    with pytest.raises(ValueError, match="max_stop_time 0.025 s is too short"):
        stop_time_speed_cap(accel, jerk, DT, 0.025, 0.02)
    with pytest.raises(ValueError, match="max_stop_time must be >= 0"):
        FilterLimits.from_joint_limits(FR3, max_stop_time=-1.0)
    # Without a cap the velocity bound is Franka's (scaled) one.
    lower, upper = velocity_goal_bounds(FilterLimits.from_joint_limits(FR3), np.array(READY_POSE))
    assert upper.min() > 1.5 and lower.max() < -1.5


@pytest.mark.parametrize("interface", INTERFACES)
def test_for_interface_reads_minus_one_as_the_interfaces_setting(interface):
    # The deploy node's parameters and the training config pass -1 for "the interface's".
    default = FilterLimits.for_interface(FR3, interface)
    minus_one = FilterLimits.for_interface(FR3, interface, accel_fraction=-1.0, jerk_fraction=-1.0,
                                           max_stop_time=-1.0)
    for name in ("accel", "jerk", "speed_cap"):
        np.testing.assert_array_equal(getattr(minus_one, name), getattr(default, name))
    slower = FilterLimits.for_interface(FR3, interface, accel_fraction=0.1, max_stop_time=-1.0)
    np.testing.assert_allclose(slower.accel, 1.0)  # 0.1 of the FR3's 10 rad/s^2
