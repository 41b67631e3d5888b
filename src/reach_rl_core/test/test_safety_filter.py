"""Safety filter: property tests on random command streams, ramps, stops and braking.

A command stream is read by a simulated 1 kHz controller, either every message on time
or with occasional late messages (the previous command read twice, the late one
superseded by the next). Bounds are checked with finite differences at 1 ms.
"""
import dataclasses

import numpy as np
import pytest

from reach_rl_core.franka_model import FR3, PANDA, READY_POSE, velocity_bounds
from reach_rl_core.self_collision import REFLEX_DISTANCE, link_separation
from filter_streams import (DT, random_goals, random_start, read_with_late_messages, run_filter,
                            worst_ratios)
from reach_rl_core.filter_limits import INTERFACES, STREAM_SLOWDOWN, FilterLimits
from reach_rl_core.safety_filter import (FilterState, braking_velocity_bounds, filter_step,
                                         track_step, velocity_goal_bounds)

ROBOT_LIMITS = {"fr3": FR3, "panda": PANDA}
@pytest.mark.parametrize("robot", ["fr3", "panda"])
def test_random_streams_respect_all_bounds(robot):
    limits = ROBOT_LIMITS[robot]
    flimits = FilterLimits.from_joint_limits(limits)
    rng = np.random.default_rng(20240611 if robot == "fr3" else 7)
    worst = {}
    for trial in range(12):
        goals = random_goals(rng, 3000)
        q0 = random_start(rng, limits)
        commands, positions = run_filter(flimits, goals, q0, tau=0.005 * (trial % 2), delay=trial % 3)
        assert np.all(np.isfinite(commands))
        # Velocity within the scaled (position-dependent) bound, up to the tracker's lag.
        lower, upper = velocity_bounds(limits, positions)
        slack = 1e-3  # rad/s
        assert np.all(commands <= flimits.velocity_fraction * upper + slack)
        assert np.all(commands >= flimits.velocity_fraction * lower - slack)
        # Positions never reach the limits.
        assert np.all(positions > np.array(limits.pos_min))
        assert np.all(positions < np.array(limits.pos_max))
        for mode in ("on time", "late"):
            read = commands if mode == "on time" else read_with_late_messages(rng, commands)
            ratios = worst_ratios(limits, flimits, commands, positions, read)
            for key, value in ratios.items():
                worst[(mode, key)] = max(worst.get((mode, key), 0.0), value)
    print("\n%s worst ratios: %s" % (robot, {"%s %s" % k: round(v, 4) for k, v in worst.items()}))
    for mode in ("on time", "late"):
        assert worst[(mode, "velocity/franka")] < 1.0
        assert worst[(mode, "accel/filter")] <= 1.0 + 1e-9
        assert worst[(mode, "jerk/filter")] <= 1.0 + 1e-6
        assert worst[(mode, "accel/franka(read)")] <= 1.0
        assert worst[(mode, "jerk/franka(read)")] <= 1.0
    # The late-message reader really exercised the doubled step (0.8 jerk_max at FR3 1 kHz).
    assert worst[("late", "jerk/franka(read)")] > worst[("on time", "jerk/franka(read)")]


@pytest.mark.parametrize("robot", ["fr3", "panda"])
def test_zero_in_zero_out(robot):
    limits = ROBOT_LIMITS[robot]
    flimits = FilterLimits.from_joint_limits(limits)
    rng = np.random.default_rng(3)
    state = FilterState.at_rest()
    for _ in range(2000):
        state, activity = filter_step(flimits, state, np.zeros(7), random_start(rng, limits))
        assert np.all(state.command == 0.0) and np.all(state.accel == 0.0)
        assert activity.active() == ()


@pytest.mark.parametrize("robot", ["fr3", "panda"])
def test_ramps_reach_goal_exactly_without_overshoot(robot):
    limits = ROBOT_LIMITS[robot]
    # The ramp alone: random goals at the ready pose may close a link gap, which is tested below.
    flimits = dataclasses.replace(FilterLimits.from_joint_limits(limits), self_collision_stop=0.0)
    rng = np.random.default_rng(11)
    q = np.array(READY_POSE)
    lower, upper = velocity_goal_bounds(flimits, q)
    brake_lower, brake_upper = braking_velocity_bounds(q, limits.pos_min, limits.pos_max,
                                                       flimits.brake_accel, flimits.brake_margin)
    lower, upper = np.maximum(lower, brake_lower), np.minimum(upper, brake_upper)
    for _ in range(8):
        start_goal = rng.uniform(lower, upper)
        goal = rng.uniform(lower, upper)
        state = FilterState.at_rest()
        for _ in range(5000):  # settle on the first goal
            state, _ = filter_step(flimits, state, start_goal, q)
            if np.all(state.command == start_goal):
                break
        np.testing.assert_array_equal(state.command, start_goal)
        start = state.command
        bound_steps = np.ceil((np.abs(goal - start) / flimits.accel + flimits.accel / flimits.jerk) / DT) + 2
        commands = []
        for _ in range(int(bound_steps.max()) + 10):
            state, _ = filter_step(flimits, state, goal, q)
            commands.append(state.command)
        commands = np.array(commands)
        arrived = np.argmax(commands == goal, axis=0)
        assert np.all(commands[-1] == goal)
        assert np.all(arrived < bound_steps)
        assert np.all(commands[arrived.max():] == goal)
        # Monotone toward the goal: never past it.
        direction = np.sign(goal - start)
        assert np.all(np.diff(commands, axis=0) * direction >= -1e-15)
        assert np.all((commands - goal) * direction <= 0)


def test_stop_is_a_smooth_ramp_to_zero():
    flimits = FilterLimits.from_joint_limits(FR3)
    q = np.array(READY_POSE)
    state = FilterState(np.array([1.5, -1.0, 0.5, 0.3, -2.0, 1.0, 0.0]), np.array([2.0, -2.0, 0, 0, 0, 1.0, 0]))
    commands = []
    for _ in range(1500):
        state, _ = filter_step(flimits, state, np.zeros(7), q)
        commands.append(state.command)
    commands = np.vstack([[1.5, -1.0, 0.5, 0.3, -2.0, 1.0, 0.0], commands])
    acc = np.diff(commands, axis=0) / DT
    jerk = np.diff(np.vstack([[2.0, -2.0, 0, 0, 0, 1.0, 0], acc]), axis=0) / DT
    assert np.all(np.abs(acc) <= flimits.accel + 1e-9)
    assert np.all(np.abs(jerk) <= flimits.jerk * (1 + 1e-6))
    assert np.all(commands[-1] == 0.0)
    # 2 rad/s at 2 rad/s^2 stops within 1 s plus the jerk ramps.
    assert np.all(commands[1100:] == 0.0)


@pytest.mark.parametrize("robot", ["fr3", "panda"])
def test_stop_time_cap_stops_from_any_reachable_state_in_time(robot):
    """With max_stop_time, commands stay within the cap, and from whatever state a random
    stream leaves the filter in, a stop (goal 0) ends within max_stop_time - detect_time."""
    limits = ROBOT_LIMITS[robot]
    detect = 0.0215  # the deploy default: 20 ms watchdog + 1.5 periods to the next tick
    flimits = FilterLimits.from_joint_limits(limits, max_stop_time=0.2, detect_time=detect)
    assert np.all(flimits.speed_cap > 0.15) and np.all(flimits.speed_cap < 1.0)
    rng = np.random.default_rng(5)
    q = np.array(READY_POSE)
    longest = 0
    for _ in range(40):
        state = FilterState.at_rest()
        for goal in random_goals(rng, int(rng.integers(50, 1500))):
            state, _ = filter_step(flimits, state, goal, q)
            assert np.all(np.abs(state.command) <= flimits.speed_cap + 1e-12)
        steps = 0
        while np.any(state.command) or np.any(state.accel):
            state, _ = filter_step(flimits, state, np.zeros(7), q)
            steps += 1
        longest = max(longest, steps)
    print("\n%s cap %s rad/s, longest stop %d ms" % (robot, np.round(flimits.speed_cap, 3), longest))
    assert longest * DT * STREAM_SLOWDOWN <= 0.2 - detect  # also with messages that much slower
    assert longest * DT > 0.5 * (0.2 - detect)  # the cap is not needlessly low


@pytest.mark.parametrize("robot", ["fr3", "panda"])
@pytest.mark.parametrize("side", [1.0, -1.0])
def test_braking_stops_every_joint_before_its_limit(robot, side):
    limits = ROBOT_LIMITS[robot]
    flimits = FilterLimits.from_joint_limits(limits)
    lo, hi = np.array(limits.pos_min), np.array(limits.pos_max)
    q0 = (lo + hi) / 2 - side * 0.5  # start on the far side of the middle, at rest
    goals = np.full((12000, 7), side * 1e9)  # full speed toward the limit, for 12 s
    commands, positions = run_filter(flimits, goals, q0, tau=0.005, delay=3)
    limit = hi if side > 0 else lo
    closest = np.min(np.abs(limit - positions), axis=0)
    print("\n%s side %+d closest approach to the limit [rad]: %s" % (robot, side, np.round(closest, 4)))
    assert np.all((positions < hi) & (positions > lo))
    assert np.all(closest > 0.04)  # the 0.05 rad margin, minus lag and latency
    # Reached full speed on the way, then came to rest.
    assert np.all(np.abs(commands).max(axis=0) > 0.5)
    assert np.all(commands[-1] == 0.0)
    lower, upper = velocity_bounds(limits, positions)
    assert np.all((commands <= upper) & (commands >= lower))


def test_braking_bounds_shape():
    q = np.array([0.0, 1.0, FR3.pos_max[2] - 0.05, FR3.pos_max[3], FR3.pos_min[4] + 0.05 + 0.25, 2.0, 0.0])
    lower, upper = braking_velocity_bounds(q, FR3.pos_min, FR3.pos_max, 1.0, 0.05)
    assert upper[2] == 0.0 and upper[3] == 0.0  # at or past the margin: only away from the limit
    assert lower[3] < 0.0
    np.testing.assert_allclose(lower[4], -np.sqrt(2 * 1.0 * 0.25))
    np.testing.assert_allclose(upper[0], np.sqrt(2 * 1.0 * (FR3.pos_max[0] - 0.05)))


def test_activity_and_nonfinite_inputs():
    flimits = FilterLimits.from_joint_limits(FR3)
    q = np.array(READY_POSE)
    q_near = q.copy()
    q_near[0] = FR3.pos_max[0] - 0.06
    goal = np.array([np.nan, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    state, activity = filter_step(flimits, FilterState.at_rest(), goal, q)
    assert activity.nonfinite[0] and not activity.nonfinite[1:].any()
    assert activity.velocity[1] and activity.jerk[1]
    assert state.command[0] == 0.0 and state.command[1] > 0.0
    _, activity = filter_step(flimits, FilterState.at_rest(), np.full(7, 0.5), q_near)
    assert activity.braking[0] and not activity.braking[1:].any()
    assert "braking" in activity.active()
    # A non-finite position means: no motion allowed on that joint.
    state = FilterState.at_rest()
    q_bad = q.copy()
    q_bad[3] = np.nan
    for _ in range(100):
        state, _ = filter_step(flimits, state, np.full(7, 0.5), q_bad)
    assert state.command[3] == 0.0 and np.all(np.delete(state.command, 3) > 0.0)


def test_track_step_overshoots_only_when_the_goal_jumps_back():
    # Accelerating hard toward 1 rad/s, the goal jumps back to the current command: the jerk
    # bound wins, the command overshoots a little and comes back, always within bounds.
    v, a = np.array([0.5]), np.array([2.0])
    values = []
    for _ in range(50):
        v, a, _, _ = track_step(v, a, 0.5, 2.0, 500.0, DT)
        values.append(v[0])
    assert max(values) > 0.5 and values[-1] == 0.5


@pytest.mark.parametrize("interface", INTERFACES)
def test_folding_onto_itself_stops_before_the_self_collision_reflex(interface):
    """franka-sim's provocation: fold joint 4 toward its limit while twisting joint 5, from
    franka-sim's start pose. The filter, integrated at 1 kHz, stops the approach before the
    capsule model's separation reaches the 5 cm reflex distance; and motions that open the
    gap again are let through."""
    flimits = FilterLimits.for_interface(FR3, interface)
    q = np.array([0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785])
    fold = np.array([0.0, 0.0, 0.0, -1.0, -0.6, 0.0, 0.0])
    state = FilterState.at_rest()
    separations, limited = [], 0
    for _ in range(8000):
        state, activity = filter_step(flimits, state, fold, q)
        limited += bool(np.any(activity.self_collision))
        q = q + state.command * DT
        separations.append(link_separation(q))
    assert limited > 0
    assert min(separations) > REFLEX_DISTANCE
    assert min(separations) < flimits.self_collision_stop + 0.01  # it did get close: a real test
    for _ in range(3000):  # unfolding is not held back
        state, activity = filter_step(flimits, state, -fold, q)
        q = q + state.command * DT
    assert link_separation(q) > min(separations) + 0.02
