"""Safety filter: desired joint velocity -> the joint velocity command actually published.

One call of :func:`filter_step` per published message. The robot's 1 kHz controller holds
the last command when a message is late, so every limit here is per *message* with
``dt = 1 / control_rate``, not per elapsed wall time. The filter, in order:

1. replaces non-finite goals by 0 (stop);
2. clamps the goal to the velocity bounds: ``velocity_fraction`` times Franka's
   (for the FR3 position-dependent) bounds, the stop-time speed cap, and the braking
   bounds that stop a joint ``brake_margin`` inside its position limits;
3. where the filter tracks (``ros2_control``), moves the previous command toward the clamped
   goal with bounded acceleration and jerk, without overshooting the goal (jerk-limited
   velocity tracking); on ``libfranka`` Ruckig does this step in the 1 kHz loop.

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
    """The last published command [rad/s] and its per-message acceleration [rad/s^2], shape (7,)."""

    command: np.ndarray
    accel: np.ndarray

    @classmethod
    def at_rest(cls) -> "FilterState":
        """State of a robot standing still: zero command, zero acceleration."""
        return cls(np.zeros(NUM_JOINTS), np.zeros(NUM_JOINTS))


class FilterActivity(NamedTuple):
    """Which clamps acted in one step, each a bool array per joint (for diagnostics)."""

    nonfinite: np.ndarray  # goal was NaN/inf, replaced by 0
    self_collision: np.ndarray  # goal changed to stop closing a link separation
    velocity: np.ndarray  # goal clamped to the (position-dependent) velocity bound
    braking: np.ndarray  # goal clamped by braking ahead of a position limit
    acceleration: np.ndarray  # command change limited by the acceleration bound
    jerk: np.ndarray  # command change limited by the jerk bound

    def active(self) -> Tuple[str, ...]:
        """Names of the clamps that acted on any joint, e.g. ``('velocity', 'jerk')``."""
        return tuple(name for name, flags in zip(self._fields, self) if np.any(flags))


def velocity_goal_bounds(limits: FilterLimits, q) -> Tuple[np.ndarray, np.ndarray]:
    """Scaled velocity bounds [rad/s] at joint positions ``q`` [rad]: ``velocity_fraction`` times
    Franka's bounds (position-dependent for the FR3), within the stop-time speed cap. A
    non-finite ``q`` gives bounds 0."""
    q = np.asarray(q, dtype=float)
    finite = np.isfinite(q)
    lower, upper = velocity_bounds(limits.joint_limits, np.where(finite, q, 0.0))
    scale = np.where(finite, limits.velocity_fraction, 0.0)
    return np.maximum(scale * lower, -limits.speed_cap), np.minimum(scale * upper, limits.speed_cap)


def goal_bounds(limits: FilterLimits, q):
    """Lower and upper bounds [rad/s] of the velocity goal at finite joint positions ``q`` [rad],
    shape (..., 7): :func:`velocity_goal_bounds` within the braking curves of the position
    limits. numpy or torch: the training task and the exported policy graph clamp with it too."""
    xp = array_namespace(q)
    lower, upper = velocity_bounds(limits.joint_limits, q)
    cap = like(q, limits.speed_cap)
    brake_lower, brake_upper = braking_velocity_bounds(q, limits.pos_min, limits.pos_max,
                                                       limits.brake_accel, limits.brake_margin,
                                                       limits.hold_time)
    low = xp.maximum(xp.maximum(limits.velocity_fraction * lower, -cap), brake_lower)
    high = xp.minimum(xp.minimum(limits.velocity_fraction * upper, cap), brake_upper)
    return low, high


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


def track_step(command, accel, goal, accel_bound, jerk_bound, dt: float):
    """One message of jerk-limited velocity tracking; returns ``(command, accel, accel_limited,
    jerk_limited)``.

    From the previous ``command`` [rad/s] and its per-message acceleration ``accel``
    [rad/s^2], move toward ``goal`` [rad/s] with ``|a| <= accel_bound`` and
    ``|a - accel| / dt <= jerk_bound`` [rad/s^3]. Toward the goal the acceleration is
    also at most the largest ``a`` with ``a^2 / (2 J) + a dt <= |goal - command|``: after
    this step the acceleration can still be ramped down to 0 at the jerk bound before
    the goal is reached, so a constant goal is never overshot. The last step lands on
    the goal exactly. All arguments broadcast; ``dt`` in s.
    """
    command = np.asarray(command, dtype=float)
    accel = np.asarray(accel, dtype=float)
    error = np.asarray(goal, dtype=float) - command
    step = jerk_bound * dt  # largest acceleration change per message, rad/s^2
    low = np.maximum(accel - step, -accel_bound)
    high = np.minimum(accel + step, accel_bound)
    # Largest acceleration that still stops at the goal (root of a^2/(2J) + a dt = |e|,
    # written without cancellation).
    reach = 2.0 * jerk_bound * np.abs(error)
    stoppable = reach / (step + np.sqrt(step * step + reach))
    wanted = np.sign(error) * np.minimum(stoppable, accel_bound)
    new_accel = np.clip(wanted, low, high)
    # Land on the goal when one step gets there and the next (acceleration 0) is in bounds.
    exact = error / dt
    land = (np.abs(exact) <= step) & (exact >= low) & (exact <= high)
    new_accel = np.where(land, exact, new_accel)
    new_command = np.where(land, goal, command + new_accel * dt)
    jerk_limited = ~land & ((wanted < low) & (low > -accel_bound) | (wanted > high) & (high < accel_bound))
    accel_limited = ~land & ((np.abs(wanted) >= accel_bound) & (np.abs(new_accel) >= accel_bound))
    return new_command, new_accel, accel_limited, jerk_limited


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
    """Next command to publish: returns ``(state, activity)``; publish ``state.command`` [rad/s].

    ``goal``: desired joint velocity [rad/s], shape (7,) (non-finite entries mean stop);
    ``q``: measured joint position [rad], shape (7,). ``state`` is the previous step's
    (``FilterState.at_rest()`` when the robot stands still). A stop is ``goal = 0``.
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
    if limits.tracking:
        command, accel, accel_limited, jerk_limited = track_step(
            state.command, state.accel, clamped, limits.accel, limits.jerk, limits.dt)
    else:  # a trajectory generator downstream bounds acceleration and jerk
        command, accel = clamped, (clamped - state.command) / limits.dt
        accel_limited = jerk_limited = np.zeros(NUM_JOINTS, dtype=bool)
    activity = FilterActivity(nonfinite, folding, velocity_clamped, braking, accel_limited,
                              jerk_limited)
    return FilterState(command, accel), activity
