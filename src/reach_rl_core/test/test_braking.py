"""reach_rl_core.braking and the filter built on it: a command held for hold_time, then a stop,
ends before the boundary."""
import numpy as np
import pytest

from reach_rl_core.braking import braking_speed
from reach_rl_core.franka_model import joint_limits
from reach_rl_core.filter_limits import LIBFRANKA, FilterLimits
from reach_rl_core.safety_filter import FilterState, filter_step


@pytest.mark.parametrize("hold", [0.0, 0.02, 0.15])
def test_hold_then_stop_covers_exactly_the_distance(hold):
    distance, decel = np.array([0.0, 1e-4, 0.05, 0.8]), 2.0
    v = braking_speed(distance, decel, hold)
    np.testing.assert_allclose(v * hold + v * v / (2.0 * decel), distance, atol=1e-12)
    assert np.all(v >= 0.0)


def test_a_hold_lowers_the_speed_and_no_room_gives_zero():
    assert braking_speed(0.1, 2.0, 0.1) < braking_speed(0.1, 2.0, 0.0) == pytest.approx(0.6324555)
    assert braking_speed(-0.3, 2.0, 0.1) == 0.0


def test_filter_passes_the_clamped_goal_and_brakes_for_the_hold():
    limits = FilterLimits.for_interface(joint_limits("fr3"), LIBFRANKA, control_rate=50.0,
                                        command_hold=0.1)
    q = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 1.6, 0.8])
    goal = np.array([0.3, -0.2, 0.1, 0.0, 0.0, 0.0, 0.0])
    state, _ = filter_step(limits, FilterState.at_rest(), goal, q)
    np.testing.assert_allclose(state.command, goal)  # no ramp: the robot side ramps
    # Near joint 1's upper limit, a joint moving toward it may go no faster than lets it hold
    # the command for hold_time and then stop brake_margin inside the limit.
    near = q.copy()
    near[0] = limits.pos_max[0] - limits.brake_margin - 0.05
    state, activity = filter_step(limits, FilterState.at_rest(), np.array([2.0] + [0.0] * 6), near)
    v = state.command[0]
    stop = v * limits.hold_time + v * v / (2.0 * limits.brake_accel[0])
    assert stop == pytest.approx(0.05) and activity.braking[0]
