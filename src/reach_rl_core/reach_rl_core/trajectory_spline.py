"""Joint trajectories as ros2_controllers' joint_trajectory_controller (JTC) samples them.

A :class:`Trajectory` is a message's points: times from its start [s], and per point the
positions [rad], velocities [rad/s] and accelerations [rad/s^2] of 7 joints. With all three
given, JTC's ``splines`` interpolation joins consecutive points by the quintic polynomial that
matches position, velocity and acceleration at both ends (:func:`quintic`); before the first
point it joins a *point before the trajectory* (the state JTC kept when the message took over)
to the first point the same way; after the last point it holds the last point unchanged
(:func:`sample`). The deploy node uses this to know where the controller's reference is when it
sends the next message; the franka_ros2 stand-in (reach_rl_sim) samples with it at 1 kHz.

numpy only.
"""
from typing import NamedTuple, Tuple

import numpy as np


class JointState3(NamedTuple):
    """Position [rad], velocity [rad/s] and acceleration [rad/s^2] of each joint, shape (7,)."""

    position: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray

    @classmethod
    def at_rest(cls, position) -> "JointState3":
        position = np.asarray(position, dtype=float)
        return cls(position, np.zeros_like(position), np.zeros_like(position))


class Trajectory(NamedTuple):
    """A trajectory message's points: ``times`` (N,) s from the message's start, strictly
    increasing and >= 0; ``positions``, ``velocities``, ``accelerations`` (N, 7)."""

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray

    def point(self, i: int) -> JointState3:
        return JointState3(self.positions[i], self.velocities[i], self.accelerations[i])

    @property
    def duration(self) -> float:
        """Time [s] of the last point from the message's start."""
        return float(self.times[-1])


def quintic(start: JointState3, end: JointState3, duration: float,
            t: float) -> JointState3:
    """The state at ``t`` in [0, ``duration``] [s] of the quintic polynomial from ``start`` (at 0)
    to ``end`` (at ``duration``) that matches position, velocity and acceleration at both ends."""
    p0, v0, a0 = start
    p1, v1, a1 = end
    T = duration
    # p(t) = p0 + v0 t + a0 t^2 / 2 + c3 t^3 + c4 t^4 + c5 t^5; the three end conditions,
    # in x = c3 T^3, y = c4 T^4, z = c5 T^5, are x + y + z = X, 3x + 4y + 5z = Y T and
    # 6x + 12y + 20z = Z T^2.
    X = p1 - p0 - v0 * T - 0.5 * a0 * T * T
    Y = (v1 - v0 - a0 * T) * T
    Z = (a1 - a0) * T * T
    c3 = (10.0 * X - 4.0 * Y + 0.5 * Z) / T ** 3
    c4 = (-15.0 * X + 7.0 * Y - Z) / T ** 4
    c5 = (6.0 * X - 3.0 * Y + 0.5 * Z) / T ** 5
    position = p0 + t * (v0 + t * (0.5 * a0 + t * (c3 + t * (c4 + t * c5))))
    velocity = v0 + t * (a0 + t * (3.0 * c3 + t * (4.0 * c4 + t * 5.0 * c5)))
    acceleration = a0 + t * (6.0 * c3 + t * (12.0 * c4 + t * 20.0 * c5))
    return JointState3(position, velocity, acceleration)


def segment_at(trajectory: Trajectory, t: float) -> int:
    """Index of the first point at or after ``t`` [s] (len(times) after the last one)."""
    return int(np.searchsorted(trajectory.times, t, side="left"))


def sample(trajectory: Trajectory, before: Tuple[float, JointState3], t: float) -> JointState3:
    """The reference at ``t`` [s from the message's start]: between ``before`` = (its time [s
    from the message's start, usually <= 0], state) and the first point, between two points, or
    the last point held after the trajectory's end."""
    i = segment_at(trajectory, t)
    if i >= len(trajectory.times):
        return trajectory.point(len(trajectory.times) - 1)
    if i == 0:
        t0, s0 = before
        if t <= t0:
            return s0
        return quintic(s0, trajectory.point(0), float(trajectory.times[0]) - t0, t - t0)
    t0 = float(trajectory.times[i - 1])
    return quintic(trajectory.point(i - 1), trajectory.point(i),
                   float(trajectory.times[i]) - t0, t - t0)
