"""Property: the topic path's trajectories, replayed through the joint_trajectory_controller
model at 1 kHz, make a velocity command stream within the FR3's limits, and the arm comes to
rest on its own once the deploy node stops sending.

Each run is one seed's random policy session, 50 Hz ticks on the system clock: goals uniform in
[-2.5, 2.5] rad/s per joint (a new goal on 60 % of the ticks, else the last one again), each
clamped by the safety filter as the deploy node clamps it (the topic path's limits with a
0.04 s hold, ``filter_step``: velocity bounds, braking ahead of the position
limits, self-collision) at the controller's desired position, and turned into a message by
``TrajectoryStream``; stalls of the node (1-20 ticks without a message, on 10 % of the ticks);
and a delivery delay per message before the controller receives it. The arm tracks perfectly:
at each update it is where the previous update's command asked it to be (the state sampled
one period ahead), so the P term only sees what a replacement changes.

Judged at every 1 ms update: the command within Franka's position-dependent velocity bounds
at the measured position, its finite differences within Franka's acceleration and jerk limits,
the positions within the position limits.
"""
import functools
from typing import NamedTuple

import numpy as np
import pytest

from reach_rl_core.command_trajectory import TrajectoryStream
from reach_rl_core.filter_limits import FilterLimits
from reach_rl_core.franka_model import READY_POSE, joint_limits, joint_names, velocity_bounds
from reach_rl_core.safety_filter import FilterState, filter_step
from reach_rl_sim.trajectory_controller import TrajectoryController

FR3 = joint_limits("fr3")
NAMES = joint_names("fr3")
HOLD = 0.04  # s, the topic path's command hold
KNOT_DT = 0.01  # s between trajectory points
LIMITS = FilterLimits.for_interface(FR3, "ros2_control", control_rate=50.0, command_hold=HOLD)
DT = 0.001  # s, the controller's update period
POLICY_DT = 0.02  # s between the node's ticks, and the messages' takeover margin
T0 = 1000.0  # s, the system clock at activation
TICKS = 100  # policy ticks a run sends (stalls come on top)
TAIL = 1.0  # s replayed after the last message
SEEDS = range(10)
P_GAIN = 5.0  # 1/s


class Replay(NamedTuple):
    """One run: per update, its time [s], the command [rad/s] and the measured position
    [rad]; the last message's stamp [s] and its last point's time [s]; the fastest joint
    speed of the reference when it was sent [rad/s]."""

    times: np.ndarray
    commands: np.ndarray
    positions: np.ndarray
    last_stamp: float
    last_duration: float
    last_speed: float


def tick_times(rng) -> np.ndarray:
    """The node's tick times [s]: every POLICY_DT, with stalls, a fraction of a period off the
    controller's updates."""
    ticks, k = [], 0
    while len(ticks) < TICKS:
        ticks.append(T0 + 0.01 + POLICY_DT * k)
        k += 1 + (int(rng.integers(1, 21)) if rng.random() < 0.1 else 0)
    return np.array(ticks) + rng.uniform(0.0, DT)


@functools.lru_cache(maxsize=None)
def replay(seed: int, max_delay: float) -> Replay:
    """Run ``seed``'s session with delivery delays uniform in [0, ``max_delay``] s."""
    rng = np.random.default_rng(seed)
    controller = TrajectoryController(NAMES, P_GAIN)
    stream = TrajectoryStream(LIMITS.accel, LIMITS.jerk, HOLD, KNOT_DT, takeover_margin=POLICY_DT)
    filter_state = FilterState.at_rest()
    q, dq = np.array(READY_POSE), np.zeros(7)
    controller.activate(T0, q)
    ticks = tick_times(rng)
    in_flight = []  # (delivery time, stamp, message)
    goal = np.zeros(7)
    times, commands, positions = [], [], []
    next_tick, last_speed = 0, 0.0
    steps = int(round((ticks[-1] + TAIL - T0) / DT))
    for k in range(1, steps + 1):
        now = T0 + k * DT
        while next_tick < len(ticks) and ticks[next_tick] <= now:
            stamp = ticks[next_tick]
            if rng.random() < 0.6:
                goal = rng.uniform(-2.5, 2.5, 7)
            desired = controller.desired.position if controller.desired is not None else q
            filter_state, _ = filter_step(LIMITS, filter_state, goal, desired)
            reference = stream.reference(stamp)
            last_speed = 0.0 if reference is None else float(np.abs(reference.velocity).max())
            message = stream.next(stamp, filter_state.command, q)
            in_flight.append((stamp + rng.uniform(0.0, max_delay), stamp, message))
            next_tick += 1
        for delivered, stamp, message in [m for m in in_flight if m[0] <= now]:
            reason = controller.receive(NAMES, stamp, message.times, message.positions,
                                        message.velocities, message.accelerations, delivered)
            assert reason == "", reason
        in_flight = [m for m in in_flight if m[0] > now]
        command = controller.update(now, q, dq)
        times.append(now)
        commands.append(command)
        positions.append(q)
        q, dq = controller.last_commanded.position, controller.last_commanded.velocity
    return Replay(np.array(times), np.array(commands), np.array(positions), float(ticks[-1]),
                  stream.last.duration, last_speed)


def worst(values: np.ndarray, bound: np.ndarray, run: Replay):
    """(excess over ``bound``, update time [s], joint number) of the largest |value| - bound."""
    excess = np.abs(values) - bound
    k, joint = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return float(excess[k, joint]), float(run.times[k] - T0), int(joint) + 1


@pytest.mark.parametrize("max_delay", [0.001, 0.015])
def test_the_command_stream_stays_within_the_fr3_limits(max_delay):
    problems = []
    for seed in SEEDS:
        run = replay(seed, max_delay)
        lower, upper = velocity_bounds(FR3, run.positions)
        over_velocity = np.maximum(run.commands - upper, lower - run.commands)
        acceleration = np.diff(run.commands, axis=0) / DT
        jerk = np.diff(acceleration, axis=0) / DT
        outside = np.maximum(run.positions - np.array(FR3.pos_max),
                             np.array(FR3.pos_min) - run.positions)
        for what, excess in (
                ("velocity", worst(np.maximum(over_velocity, 0.0), 1e-9, run)),
                ("acceleration", worst(acceleration, np.array(FR3.acc_max), run)),
                ("jerk", worst(jerk, np.array(FR3.jerk_max), run)),
                ("position", worst(np.maximum(outside, 0.0), 0.0, run))):
            if excess[0] > 0.0:
                problems.append("seed %d: %s %.4g over the limit at t = %.3f s, joint %d"
                                % ((seed, what) + excess))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("max_delay", [0.001, 0.015])
def test_the_arm_comes_to_rest_once_the_messages_stop(max_delay):
    """The command is zero from the last message's last point on (the controller holds that
    point, at rest), and that point comes no later than the takeover margin and the hold, a
    jerk-limited stop from the speed they can reach (the reference's speed at the stamp plus
    A * (margin + hold)), and one knot spacing. Not a fixed 0.5 s: from the filter's top speed, 0.9 * 2.62 rad/s, a stop at
    A = 4 rad/s^2 alone takes 0.59 s."""
    for seed in SEEDS:
        run = replay(seed, max_delay)
        moving = np.nonzero(np.any(run.commands != 0.0, axis=1))[0]
        stopped = run.times[moving[-1] + 1] if len(moving) else T0
        assert stopped <= run.last_stamp + run.last_duration + DT, (seed, stopped - run.last_stamp)
        speed = run.last_speed + LIMITS.accel * (POLICY_DT + HOLD)
        stop_time = np.max(speed / LIMITS.accel + 3.0 * LIMITS.accel / LIMITS.jerk)
        assert run.last_duration <= POLICY_DT + HOLD + stop_time + KNOT_DT, (seed, run.last_duration)
