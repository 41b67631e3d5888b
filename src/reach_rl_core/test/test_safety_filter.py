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
from reach_rl_core.filter_limits import (INTERFACES, LIBFRANKA, ROS2_CONTROL, STREAM_SLOWDOWN,
                                         FilterLimits, acceleration_bound, stop_time_speed_cap)
from reach_rl_core.safety_filter import (FilterState, braking_velocity_bounds, filter_step,
                                         track_step, velocity_goal_bounds)

ROBOT_LIMITS = {"fr3": FR3, "panda": PANDA}
DT = 1e-3
EXTREMES = np.array([1e9, -1e9, np.inf, -np.inf, 1e3, -1e3, 0.0])


def random_goals(rng, steps):
    """Piecewise-constant goals [rad/s] (random segment lengths), some extreme, some noisy."""
    goals = np.empty((steps, 7))
    k = 0
    while k < steps:
        n = int(rng.integers(1, 400))
        kind = rng.integers(4)
        if kind == 0:
            value = rng.uniform(-3.0, 3.0, 7)
        elif kind == 1:
            value = rng.choice(EXTREMES, 7)
        elif kind == 2:
            value = np.zeros(7)
        else:  # jittery policy output around a random mean
            value = rng.uniform(-2.0, 2.0, 7) + rng.normal(0.0, 0.5, (min(n, steps - k), 7))
        goals[k:k + n] = value
        k += n
    return goals


def random_start(rng, limits):
    """Joint positions [rad]: uniform inside the limits, or within 0.1 rad of one of them."""
    lo, hi = np.array(limits.pos_min), np.array(limits.pos_max)
    q = rng.uniform(lo, hi)
    near = rng.random(7) < 0.5
    upper_side = rng.random(7) < 0.5
    offset = rng.uniform(0.0, 0.1, 7)
    return np.where(near, np.where(upper_side, hi - offset, lo + offset), q)


def run_filter(flimits, goals, q0, tau=0.0, delay=0):
    """Drive the filter with ``goals``; the joint follows the commands through a first-order lag
    ``tau`` [s] and the filter sees positions ``delay`` cycles old. Returns commands [N, 7] and
    the true positions [N, 7] during each command's cycle."""
    state = FilterState.at_rest()
    q, dq = np.array(q0, dtype=float), np.zeros(7)
    history = [q.copy()] * (delay + 1)
    alpha = 1.0 if tau <= 0 else 1.0 - np.exp(-DT / tau)
    commands, positions = [], []
    for goal in goals:
        state, _ = filter_step(flimits, state, goal, history[0])
        commands.append(state.command)
        positions.append(q.copy())
        dq = dq + alpha * (state.command - dq)
        q = q + dq * DT
        history = history[1:] + [q.copy()]
    return np.array(commands), np.array(positions)


def read_with_late_messages(rng, commands, probability=0.05):
    """What a 1 kHz controller reads when a message is occasionally late: the previous command
    a second time, then (the late message superseded) the next one. Late messages never come
    back to back."""
    read = commands.copy()
    late = rng.random(len(commands)) < probability
    late[0] = False
    late[1:] &= ~late[:-1]
    idx = np.nonzero(late)[0]
    read[idx] = commands[idx - 1]
    return read


def derivatives(read):
    """Accelerations [rad/s^2] and jerks [rad/s^3] a controller reading ``read`` at 1 kHz sees,
    starting from rest."""
    v = np.vstack([np.zeros((2, 7)), read])
    acc = np.diff(v, axis=0) / DT
    return acc[1:], np.diff(acc, axis=0) / DT


def worst_ratios(limits, flimits, commands, positions, read):
    """Worst ratio of |velocity|, |acceleration|, |jerk| to the filter's own bounds (for the
    stream as published) and to Franka's limits (for the stream as read)."""
    lower, upper = velocity_bounds(limits, positions)
    vel_hw = np.where(commands >= 0, commands / np.maximum(upper, 1e-12), commands / np.minimum(lower, -1e-12))
    acc, jerk = derivatives(commands)
    acc_read, jerk_read = derivatives(read)
    return {
        "velocity/franka": float(np.max(np.where(commands == 0, 0.0, vel_hw))),
        "accel/filter": float(np.max(np.abs(acc) / flimits.accel)),
        "jerk/filter": float(np.max(np.abs(jerk) / flimits.jerk)),
        "accel/franka(read)": float(np.max(np.abs(acc_read) / np.array(limits.acc_max))),
        "jerk/franka(read)": float(np.max(np.abs(jerk_read) / np.array(limits.jerk_max))),
    }


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
