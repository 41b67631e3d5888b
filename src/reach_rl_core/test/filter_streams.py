"""Command streams for the safety filter's tests: random goals and start poses, the filter driven
through a lagging joint, what a 1 kHz controller reads when messages come late, and the worst
ratios of a stream to the filter's and Franka's limits."""
import numpy as np

from reach_rl_core.franka_model import velocity_bounds
from reach_rl_core.safety_filter import FilterState, filter_step

DT = 1e-3  # s, one message per 1 kHz controller cycle
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
