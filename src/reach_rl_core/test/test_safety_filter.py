"""Safety filter: the goal clamp on random command streams, braking and self-collision.

The filter runs once per policy step, with the limits a deploy node builds; a robot side
reaches each command within the acceleration and jerk bounds every 1 ms (filter_streams).
"""
import dataclasses

import numpy as np
import pytest

from reach_rl_core.franka_model import FR3, PANDA, READY_POSE, velocity_bounds
from reach_rl_core.self_collision import REFLEX_DISTANCE, link_separation
from filter_streams import deploy_limits, random_goals, random_start, run_filter
from reach_rl_core.filter_limits import FRANKY_VELOCITY_MAX, INTERFACES, LIBFRANKA
from reach_rl_core.safety_filter import (FilterState, braking_velocity_bounds, filter_step,
                                         goal_bounds, velocity_goal_bounds)

ROBOT_LIMITS = {"fr3": FR3, "panda": PANDA}


@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize("robot", ["fr3", "panda"])
def test_random_streams_keep_the_arm_inside_its_limits(robot, interface):
    limits = ROBOT_LIMITS[robot]
    flimits = deploy_limits(limits, interface)
    rng = np.random.default_rng(20240611 if robot == "fr3" else 7)
    worst = 0.0
    for trial in range(12):
        goals = random_goals(rng, 300)
        q0 = random_start(rng, limits)
        commands, positions, velocities, _ = run_filter(flimits, goals, q0, delay=trial % 2)
        assert np.all(np.isfinite(commands))
        # Positions never reach the limits, velocities never Franka's (position-dependent) bound.
        assert np.all(positions > np.array(limits.pos_min))
        assert np.all(positions < np.array(limits.pos_max))
        lower, upper = velocity_bounds(limits, positions)
        ratio = np.where(velocities >= 0, velocities / np.maximum(upper, 1e-12),
                         velocities / np.minimum(lower, -1e-12))
        worst = max(worst, float(np.max(np.where(velocities == 0, 0.0, ratio))))
    print("\n%s %s worst velocity / Franka's bound: %.3f" % (robot, interface, worst))
    assert 0.5 < worst < 1.0  # the streams did drive the arm fast


@pytest.mark.parametrize("robot", ["fr3", "panda"])
def test_zero_in_zero_out(robot):
    limits = ROBOT_LIMITS[robot]
    flimits = deploy_limits(limits, LIBFRANKA)
    rng = np.random.default_rng(3)
    state = FilterState.at_rest()
    for _ in range(2000):
        state, activity = filter_step(flimits, state, np.zeros(7), random_start(rng, limits))
        assert np.all(state.command == 0.0)
        assert activity.active() == ()


@pytest.mark.parametrize("robot", ["fr3", "panda"])
def test_the_clamped_goal_is_the_command_at_once(robot):
    """No ramp in the filter: a goal within the bounds is the command exactly, one outside them
    is the nearest bound, and a zero goal stops the command at once (the robot side ramps)."""
    limits = ROBOT_LIMITS[robot]
    flimits = dataclasses.replace(deploy_limits(limits, LIBFRANKA), self_collision_stop=0.0)
    rng = np.random.default_rng(11)
    q = np.array(READY_POSE)
    low, high = goal_bounds(flimits, q)
    moving = FilterState(rng.uniform(low, high))
    for _ in range(8):
        inside = rng.uniform(low, high)
        state, activity = filter_step(flimits, moving, inside, q)
        np.testing.assert_array_equal(state.command, inside)
        assert activity.active() == ()
        outside = inside + np.sign(inside) * 10.0
        state, activity = filter_step(flimits, moving, outside, q)
        np.testing.assert_array_equal(state.command, np.where(inside >= 0, high, low))
        assert activity.velocity.all()
    state, _ = filter_step(flimits, moving, np.zeros(7), q)
    assert np.all(state.command == 0.0)


@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize("robot", ["fr3", "panda"])
@pytest.mark.parametrize("side", [1.0, -1.0])
def test_braking_stops_every_joint_before_its_limit(robot, side, interface):
    limits = ROBOT_LIMITS[robot]
    flimits = deploy_limits(limits, interface)
    lo, hi = np.array(limits.pos_min), np.array(limits.pos_max)
    q0 = (lo + hi) / 2 - side * 0.5  # start on the far side of the middle, at rest
    goals = np.full((600, 7), side * 1e9)  # full speed toward the limit, for 12 s
    commands, positions, velocities, _ = run_filter(flimits, goals, q0, delay=1)
    limit = hi if side > 0 else lo
    closest = np.min(np.abs(limit - positions), axis=0)
    print("\n%s side %+d closest approach to the limit [rad]: %s" % (robot, side, np.round(closest, 4)))
    assert np.all((positions < hi) & (positions > lo))
    # The 0.05 rad margin, to a millimetre: the braking curves' hold covers the policy step the
    # filter saw late (without it, 0.038-0.044 rad).
    assert np.all(closest > 0.049)
    # Reached full speed on the way, then came to rest.
    assert np.all(np.abs(commands).max(axis=0) > 0.5)
    assert np.all(np.abs(commands[-1]) < 1e-9) and np.all(np.abs(velocities[-1]) < 1e-9)
    lower, upper = velocity_bounds(limits, positions)
    assert np.all((velocities <= upper) & (velocities >= lower))


@pytest.mark.parametrize("interface", INTERFACES)
def test_libfranka_goals_stay_within_what_franky_accepts(interface):
    """franky fails a motion whose target velocity is above its maximum (Panda's limits, also
    on an FR3): the libfranka filter caps there; the topic path keeps the FR3's own bounds."""
    flimits = deploy_limits(FR3, interface)
    q = np.array(READY_POSE[:6] + (-2.0,))  # joint 7 5 rad from the limit it moves toward
    state, activity = filter_step(flimits, FilterState.at_rest(), np.full(7, 10.0), q)
    assert activity.velocity.all()
    if interface == LIBFRANKA:
        assert np.all(state.command <= np.array(FRANKY_VELOCITY_MAX))
        assert state.command[6] == pytest.approx(FRANKY_VELOCITY_MAX[6])
    else:
        assert state.command[6] > FRANKY_VELOCITY_MAX[6] + 1.0  # 0.9 * 5.26 rad/s, less braking
    # the bounds the training and the policy file clamp with agree
    np.testing.assert_array_equal(np.minimum(goal_bounds(flimits, q)[1], 10.0), state.command)


def test_braking_bounds_shape():
    q = np.array([0.0, 1.0, FR3.pos_max[2] - 0.05, FR3.pos_max[3], FR3.pos_min[4] + 0.05 + 0.25, 2.0, 0.0])
    lower, upper = braking_velocity_bounds(q, FR3.pos_min, FR3.pos_max, 1.0, 0.05)
    assert upper[2] == 0.0 and upper[3] == 0.0  # at or past the margin: only away from the limit
    assert lower[3] < 0.0
    np.testing.assert_allclose(lower[4], -np.sqrt(2 * 1.0 * 0.25))
    np.testing.assert_allclose(upper[0], np.sqrt(2 * 1.0 * (FR3.pos_max[0] - 0.05)))


def test_activity_and_nonfinite_inputs():
    flimits = deploy_limits(FR3, LIBFRANKA)
    q = np.array(READY_POSE)
    q_near = q.copy()
    q_near[0] = FR3.pos_max[0] - 0.06
    goal = np.array([np.nan, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    state, activity = filter_step(flimits, FilterState.at_rest(), goal, q)
    assert activity.nonfinite[0] and not activity.nonfinite[1:].any()
    assert activity.velocity[1] and activity.active() == ("nonfinite", "velocity")
    assert state.command[0] == 0.0
    assert state.command[1] == velocity_goal_bounds(flimits, q)[1][1]
    _, activity = filter_step(flimits, FilterState.at_rest(), np.full(7, 0.5), q_near)
    assert activity.braking[0] and not activity.braking[1:].any()
    assert "braking" in activity.active()
    # A non-finite position means: no motion allowed on that joint.
    q_bad = q.copy()
    q_bad[3] = np.nan
    state, _ = filter_step(flimits, FilterState.at_rest(), np.full(7, 0.5), q_bad)
    assert state.command[3] == 0.0 and np.all(np.delete(state.command, 3) > 0.0)


@pytest.mark.parametrize("interface", INTERFACES)
def test_folding_onto_itself_stops_before_the_self_collision_reflex(interface):
    """franka-sim's provocation: fold joint 4 toward its limit while twisting joint 5, from
    franka-sim's start pose. The filter, once per policy step over a robot side that follows
    its commands, stops the approach before the capsule model's separation reaches the 5 cm
    reflex distance; and motions that open the gap again are let through."""
    flimits = deploy_limits(FR3, interface)
    q = np.array([0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785])
    fold = np.array([0.0, 0.0, 0.0, -1.0, -0.6, 0.0, 0.0])
    folding = run_filter(flimits, np.tile(fold, (400, 1)), q)  # 8 s
    separations = [link_separation(p) for p in folding.positions]
    assert sum(bool(np.any(a.self_collision)) for a in folding.activity) > 0
    assert min(separations) > REFLEX_DISTANCE
    assert min(separations) < flimits.self_collision_stop + 0.01  # it did get close: a real test
    unfolding = run_filter(flimits, np.tile(-fold, (150, 1)), folding.positions[-1])
    assert link_separation(unfolding.positions[-1]) > min(separations) + 0.02  # not held back
