"""The filter's limits per deploy interface (reach_rl_core.filter_limits): the acceleration and
jerk bounds, the velocity bounds, each interface's command hold, and -1 read as the interface's
setting."""
import numpy as np
import pytest

from reach_rl_core.filter_limits import (INTERFACE_DEFAULTS, INTERFACES, LIBFRANKA, ROS2_CONTROL,
                                         FilterLimits)
from reach_rl_core.franka_model import FR3, PANDA, READY_POSE, velocity_bounds
from reach_rl_core.safety_filter import velocity_goal_bounds

ROBOT_LIMITS = {"fr3": FR3, "panda": PANDA}


@pytest.mark.parametrize("robot", ["fr3", "panda"])
@pytest.mark.parametrize("interface", INTERFACES)
def test_acceleration_and_jerk_are_fractions_of_frankas_at_any_rate(robot, interface):
    limits = ROBOT_LIMITS[robot]
    fraction = 0.3 if interface == "ros2_control" else 0.4  # filter_limits' docstring: why
    for rate in (50.0, 1000.0):
        flimits = FilterLimits.for_interface(limits, interface, rate)
        np.testing.assert_allclose(flimits.accel, fraction * np.array(limits.acc_max))
        np.testing.assert_allclose(flimits.jerk, 0.1 * np.array(limits.jerk_max))
        np.testing.assert_allclose(flimits.brake_accel, 0.5 * flimits.accel)
        assert flimits.dt == pytest.approx(1.0 / rate)
    if robot == "fr3":
        np.testing.assert_allclose(flimits.accel, 10.0 * fraction)  # of the FR3's 10 rad/s^2


def test_velocity_bounds_are_frankas_scaled():
    flimits = FilterLimits.from_joint_limits(FR3, velocity_fraction=0.5)
    q = np.array(READY_POSE)
    lower, upper = velocity_goal_bounds(flimits, q)
    franka_lower, franka_upper = velocity_bounds(FR3, q)
    np.testing.assert_allclose(lower, 0.5 * franka_lower)
    np.testing.assert_allclose(upper, 0.5 * franka_upper)
    assert upper.min() > 0.5 and lower.max() < -0.5


@pytest.mark.parametrize("interface, hold", [(ROS2_CONTROL, 0.04), (LIBFRANKA, 0.1)])
def test_command_hold_minus_one_is_the_interfaces(interface, hold):
    """The braking curves allow for the interface's hold, the command period and the jerk ramp
    to the command; the default (0) is no hold, as in the training simulator."""
    assert INTERFACE_DEFAULTS[interface].command_hold == hold
    flimits = FilterLimits.for_interface(FR3, interface, 50.0, command_hold=-1.0)
    assert flimits.command_hold == hold  # what the interface hands the robot side
    ramp = flimits.accel[0] / flimits.jerk[0]  # s, the jerk ramp to a command
    assert flimits.hold_time == pytest.approx(hold + 0.02 + ramp) and 0.006 <= ramp <= 0.008
    explicit = FilterLimits.for_interface(FR3, interface, 50.0, command_hold=hold)
    assert explicit.hold_time == flimits.hold_time
    assert FilterLimits.for_interface(FR3, interface, 50.0).hold_time == 0.0


@pytest.mark.parametrize("interface", INTERFACES)
def test_for_interface_reads_minus_one_as_the_interfaces_setting(interface):
    # The deploy node's parameters and the training config pass -1 for "the interface's".
    default = FilterLimits.for_interface(FR3, interface)
    minus_one = FilterLimits.for_interface(FR3, interface, accel_fraction=-1.0, jerk_fraction=-1.0)
    for name in ("accel", "jerk", "brake_accel"):
        np.testing.assert_array_equal(getattr(minus_one, name), getattr(default, name))
    assert minus_one.interface == default.interface == interface
    slower = FilterLimits.for_interface(FR3, interface, accel_fraction=0.1, jerk_fraction=-1.0)
    np.testing.assert_allclose(slower.accel, 1.0)  # 0.1 of the FR3's 10 rad/s^2
    np.testing.assert_array_equal(slower.jerk, default.jerk)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown interface 'ethercat'"):
        FilterLimits.for_interface(FR3, "ethercat")
    with pytest.raises(ValueError, match="accel_fraction must be in"):
        FilterLimits.from_joint_limits(FR3, accel_fraction=1.5)
    with pytest.raises(ValueError, match="command_hold must be >= 0"):
        FilterLimits.from_joint_limits(FR3, command_hold=-0.1)
