"""Safety filter: desired joint velocity -> the joint velocity command actually sent.

One call of :func:`filter_step` per command, once per policy step on both deploy interfaces.
The filter clamps the goal; the robot side (joint_trajectory_controller's trajectory, or
franky's Ruckig) reaches the command within the acceleration and jerk bounds every 1 ms. In
order, the filter:

1. replaces non-finite goals by 0 (stop);
2. clamps the goal to the velocity bounds: ``velocity_fraction`` times Franka's
   (for the FR3 position-dependent) bounds, and the braking bounds that stop a joint
   ``brake_margin`` inside its position limits (allowing for ``hold_time``);
3. limits the goal's approach of the closest link pair (self-collision).

The bounds and why each is what it is: :mod:`reach_rl_core.filter_limits`.

Plain numpy; the deploy side never imports torch. The training task limits its commands
with :func:`policy_command` and :func:`braking_velocity_bounds` too (on tensors).
"""
from typing import NamedTuple, Tuple

import numpy as np

from reach_rl_core.braking import braking_speed
from reach_rl_core.filter_limits import BRAKE_ACCEL_SHARE, DEFAULT_BRAKE_MARGIN, FilterLimits
from reach_rl_core.franka_model import NUM_JOINTS, array_namespace, like, velocity_bounds
from reach_rl_core.self_collision import limit_closing_velocity, separation_and_gradient


def braking_velocity_bounds(q, pos_min, pos_max, brake_accel, margin: float = DEFAULT_BRAKE_MARGIN,
                            hold_time: float = 0.0):
    """Lower and upper velocity bounds [rad/s] that stop a joint ``margin`` [rad] inside its limits.

    A joint at position ``q`` [rad] whose limit (minus ``margin``) is ``s`` rad away may move
    toward it at most ``braking_speed(s, brake_accel, hold_time)`` [rad/s]
    (:mod:`reach_rl_core.braking`; ``sqrt(2 * brake_accel * s)`` without a hold); at or beyond
    the margin it may only move away (bound 0). ``brake_accel`` [rad/s^2] per joint or scalar;
    ``q`` (..., 7) a numpy array or a torch tensor (the training task limits its commands with this too), and
    the bounds come back of the same kind.
    """
    pos_min, pos_max, brake_accel = (like(q, v) for v in (pos_min, pos_max, brake_accel))
    return (-braking_speed(q - pos_min - margin, brake_accel, hold_time),
            braking_speed(pos_max - margin - q, brake_accel, hold_time))


class FilterState(NamedTuple):
    """The last command sent [rad/s], shape (7,)."""

    command: np.ndarray

    @classmethod
    def at_rest(cls) -> "FilterState":
        """State of a robot standing still: zero command."""
        return cls(np.zeros(NUM_JOINTS))


class FilterActivity(NamedTuple):
    """Which clamps acted in one step, each a bool array per joint (for diagnostics)."""

    nonfinite: np.ndarray  # goal was NaN/inf, replaced by 0
    self_collision: np.ndarray  # goal changed to stop closing a link separation
    velocity: np.ndarray  # goal clamped to the (position-dependent) velocity bound
    braking: np.ndarray  # goal clamped by braking ahead of a position limit

    def active(self) -> Tuple[str, ...]:
        """Names of the clamps that acted on any joint, e.g. ``('velocity', 'braking')``."""
        return tuple(name for name, flags in zip(self._fields, self) if np.any(flags))


def scaled_velocity_bounds(limits: FilterLimits, q):
    """Lower and upper velocity bounds [rad/s] at finite joint positions ``q`` [rad], shape
    (..., 7): ``velocity_fraction`` times Franka's bounds (position-dependent for the FR3),
    within the robot side's ``velocity_cap``. numpy or torch."""
    xp = array_namespace(q)
    lower, upper = velocity_bounds(limits.joint_limits, q)
    lower, upper = limits.velocity_fraction * lower, limits.velocity_fraction * upper
    if limits.velocity_cap is not None:
        cap = like(q, limits.velocity_cap)
        lower, upper = xp.maximum(lower, -cap), xp.minimum(upper, cap)
    return lower, upper


def velocity_goal_bounds(limits: FilterLimits, q) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`scaled_velocity_bounds` [rad/s] at joint positions ``q`` [rad], numpy; a
    non-finite ``q`` gives bounds 0."""
    q = np.asarray(q, dtype=float)
    finite = np.isfinite(q)
    lower, upper = scaled_velocity_bounds(limits, np.where(finite, q, 0.0))
    return np.where(finite, lower, 0.0), np.where(finite, upper, 0.0)


def goal_bounds(limits: FilterLimits, q):
    """Lower and upper bounds [rad/s] of the velocity goal at finite joint positions ``q`` [rad],
    shape (..., 7): :func:`scaled_velocity_bounds` within the braking curves of the position
    limits. numpy or torch: the training task and the exported policy graph clamp with it too."""
    xp = array_namespace(q)
    lower, upper = scaled_velocity_bounds(limits, q)
    brake_lower, brake_upper = braking_velocity_bounds(q, limits.pos_min, limits.pos_max,
                                                       limits.brake_accel, limits.brake_margin,
                                                       limits.hold_time)
    return xp.maximum(lower, brake_lower), xp.minimum(upper, brake_upper)


def policy_command(limits: FilterLimits, q, goal, prev_command, step_dt: float):
    """The command a policy step sends [rad/s]: ``goal`` [rad/s] clamped to :func:`goal_bounds`
    at ``q`` [rad], then moved from ``prev_command`` [rad/s] by at most the acceleration bound
    times ``step_dt`` [s] per joint. numpy or torch, shapes (..., 7). The training task limits
    its commands with it, and the exported policy graph ends with it (contract 2), so a policy
    file's output is the command it was trained to send."""
    xp = array_namespace(q)
    low, high = goal_bounds(limits, q)
    clamped = xp.minimum(xp.maximum(goal, low), high)
    step = like(q, limits.accel * step_dt)
    return prev_command + xp.minimum(xp.maximum(clamped - prev_command, -step), step)


def self_collision_goal(limits: FilterLimits, goal: np.ndarray, q: np.ndarray, low: np.ndarray,
                        high: np.ndarray) -> np.ndarray:
    """``goal`` [rad/s], within ``[low, high]``, with its approach of the closest link pair
    limited to the braking curve that stops it at ``limits.self_collision_stop`` [m] (module
    docstring); ``q`` [rad].

    The smallest correction along the separation gradient ``g`` [m/rad] comes first; where the
    bounds clip it, the whole goal is scaled toward zero until the approach obeys the curve.
    Along ``g`` the joints can change the separation's rate by ``A |g|^2 / max|g_i|`` [m/s^2]
    (no joint faster than A); the curve uses ``BRAKE_ACCEL_SHARE`` of that.
    """
    separation, gradient = separation_and_gradient(q)
    largest = float(np.max(np.abs(gradient)))
    if largest == 0.0:
        return goal
    brake = BRAKE_ACCEL_SHARE * float(np.min(limits.accel)) * float(gradient @ gradient) / largest
    limited = np.clip(limit_closing_velocity(goal, separation, gradient, limits.self_collision_stop,
                                             brake, limits.hold_time), low, high)
    need = -braking_speed(separation - limits.self_collision_stop, brake, limits.hold_time)
    rate = float(gradient @ limited)
    if rate < need:  # rate < need <= 0: scaling down slows the approach in proportion
        limited = limited * (need / rate)
    return limited


def filter_step(limits: FilterLimits, state: FilterState, goal,
                q) -> Tuple[FilterState, FilterActivity]:
    """Next command to send: returns ``(state, activity)``; send ``state.command`` [rad/s].

    ``goal``: desired joint velocity [rad/s], shape (7,) (non-finite entries mean stop);
    ``q``: measured joint position [rad], shape (7,). ``state`` is the previous step's
    (``FilterState.at_rest()`` when the robot stands still); the clamp does not depend on it,
    the robot side ramps from the last command to the new one. A stop is ``goal = 0``.
    """
    goal = np.asarray(goal, dtype=float)
    q = np.asarray(q, dtype=float)
    nonfinite = ~np.isfinite(goal)
    goal = np.where(nonfinite, 0.0, goal)
    lower, upper = velocity_goal_bounds(limits, q)  # 0 where q is not finite
    brake_lower, brake_upper = braking_velocity_bounds(
        np.where(np.isfinite(q), q, 0.0), limits.pos_min, limits.pos_max, limits.brake_accel,
        limits.brake_margin, limits.hold_time)
    low = np.maximum(lower, brake_lower)  # = goal_bounds where q is finite, 0 elsewhere
    high = np.minimum(upper, brake_upper)
    clamped = np.clip(goal, low, high)
    folding = np.zeros(NUM_JOINTS, dtype=bool)
    if limits.self_collision_stop > 0.0 and np.all(np.isfinite(q)):
        limited = self_collision_goal(limits, clamped, q, low, high)
        folding = limited != clamped
        clamped = limited
    velocity_clamped = (goal < lower) | (goal > upper)
    braking = ((goal < brake_lower) & (brake_lower > lower)) | ((goal > brake_upper) & (brake_upper < upper))
    return FilterState(clamped), FilterActivity(nonfinite, folding, velocity_clamped, braking)
