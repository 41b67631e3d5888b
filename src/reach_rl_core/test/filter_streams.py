"""Command streams for the safety filter's tests: random goals and start poses, and the filter
run once per policy step, as both deploy interfaces run it, over a robot side that reaches
each command within the filter's acceleration and jerk bounds every 1 ms (what franky's Ruckig
and the topic path's trajectories do)."""
from typing import List, NamedTuple

import numpy as np

from reach_rl_core.filter_limits import FilterLimits
from reach_rl_core.safety_filter import FilterActivity, FilterState, filter_step

POLICY_DT = 0.02  # s, one filter step per policy step
CYCLE = 1e-3  # s, the robot side's control cycle
CYCLES = int(round(POLICY_DT / CYCLE))  # robot cycles per filter step
EXTREMES = np.array([1e9, -1e9, np.inf, -np.inf, 1e3, -1e3, 0.0])


def deploy_limits(joint_limits, interface: str) -> FilterLimits:
    """The filter limits a deploy node builds: once per policy step, the interface's hold."""
    return FilterLimits.for_interface(joint_limits, interface, 1.0 / POLICY_DT, command_hold=-1.0)


def random_goals(rng, steps):
    """Piecewise-constant goals [rad/s] (random segment lengths), some extreme, some noisy."""
    goals = np.empty((steps, 7))
    k = 0
    while k < steps:
        n = int(rng.integers(1, 40))
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


def follow(velocity, accel, command, accel_bound, jerk_bound):
    """One robot cycle toward ``command`` [rad/s] from ``velocity`` [rad/s] and ``accel``
    [rad/s^2] with ``|a| <= accel_bound`` and ``|jerk| <= jerk_bound``, slowing in time not
    to overshoot a constant command; returns ``(velocity, accel)``."""
    error = command - velocity
    step = jerk_bound * CYCLE
    low = np.maximum(accel - step, -accel_bound)
    high = np.minimum(accel + step, accel_bound)
    reach = 2.0 * jerk_bound * np.abs(error)  # largest a with a^2/(2J) + a CYCLE <= |error|
    wanted = np.sign(error) * np.minimum(reach / (step + np.sqrt(step * step + reach)), accel_bound)
    new_accel = np.clip(wanted, low, high)
    exact = error / CYCLE
    land = (np.abs(exact) <= step) & (exact >= low) & (exact <= high)  # and a = 0 next cycle
    return (np.where(land, command, velocity + new_accel * CYCLE),
            np.where(land, exact, new_accel))


class Stream(NamedTuple):
    """What :func:`run_filter` returns."""

    commands: np.ndarray  # rad/s [N, 7], one per policy step
    positions: np.ndarray  # rad [N * CYCLES, 7], the robot's at the end of every cycle
    velocities: np.ndarray  # rad/s [N * CYCLES, 7]
    activity: List[FilterActivity]  # the filter's, one per policy step


def run_filter(flimits, goals, q0, delay=0) -> Stream:
    """Drive the filter with ``goals``, one per policy step, from rest at ``q0`` [rad]; the
    robot follows each command (:func:`follow`) and the filter sees positions ``delay``
    policy steps old."""
    state = FilterState.at_rest()
    q, dq, ddq = np.array(q0, dtype=float), np.zeros(7), np.zeros(7)
    history = [q.copy()] * (delay + 1)
    commands, positions, velocities, activity = [], [], [], []
    for goal in goals:
        state, acted = filter_step(flimits, state, goal, history[0])
        commands.append(state.command)
        activity.append(acted)
        for _ in range(CYCLES):
            dq_next, ddq = follow(dq, ddq, state.command, flimits.accel, flimits.jerk)
            q = q + 0.5 * (dq + dq_next) * CYCLE
            dq = dq_next
            positions.append(q.copy())
            velocities.append(dq.copy())
        history = history[1:] + [q.copy()]
    return Stream(np.array(commands), np.array(positions), np.array(velocities), activity)
