"""Safety filter: desired joint velocity -> the joint velocity command actually published.

One call of :func:`filter_step` per published message. The robot's 1 kHz controller holds
the last command when a message is late, so every limit here is per *message* with
``dt = 1 / control_rate``, not per elapsed wall time. The filter, in order:

1. replaces non-finite goals by 0 (stop);
2. clamps the goal to the velocity bounds: ``velocity_fraction`` times Franka's
   (for the FR3 position-dependent) bounds, the stop-time speed cap, and the braking
   bounds that stop a joint ``brake_margin`` inside its position limits;
3. moves the previous command toward the clamped goal with bounded acceleration and
   jerk, without overshooting the goal (jerk-limited velocity tracking).

Bounds, per joint (rad/s^2, rad/s^3):

* acceleration ``A = min(accel_fraction * acc_max, 0.4 * jerk_max * dt)``. The second
  term covers one late message: the controller then reads accelerations ``a, 0, 2a``
  (the command held one extra cycle, then a doubled step), so it sees ``2A <= 0.8 *
  jerk_max * dt``, i.e. a jerk of at most 0.8 ``jerk_max`` and an acceleration of at most
  ``2 A`` (<= 0.4 ``acc_max`` with the default fraction). FR3 at 1 kHz: 2.0 rad/s^2.
* jerk ``J = jerk_fraction * jerk_max`` between consecutive messages.
* braking: toward a limit at distance ``s`` (position limit minus ``brake_margin``, rad) a
  joint may move at most ``sqrt(2 * (A / 2) * s)``. Following that curve needs only half
  the acceleration bound, which leaves the other half for the jerk-limited tracker to
  catch up with the falling bound; and from a speed ``v`` on the curve a full jerk-limited
  stop (decelerate at ``A``, jerk ``J``) needs ``v^2/(2A) + v A/(2J)`` = ``s/2 + v A/(2J)``
  which is ``<= s`` whenever ``s >= A^3/J^2`` (3.2e-5 rad for the FR3): always inside the
  margin.
* stop-time speed cap: with ``max_stop_time`` set, no joint moves faster than the speed
  from which a jerk-limited stop ends within ``max_stop_time`` of the last good joint state
  (:func:`stop_time_speed_cap`). Stopping takes ``v / A``, so a fast stop needs a slow arm:
  at A = 2 rad/s^2 a 0.2 s stop allows 0.30 rad/s.

Plain numpy; the deploy side never imports torch. The training simulator imports
:class:`FilterLimits` and :func:`braking_velocity_bounds` to limit its commands the
same way.
"""
from dataclasses import dataclass
from typing import NamedTuple, Tuple

import numpy as np

from reach_rl_deploy.franka_model import NUM_JOINTS, JointLimits, like, velocity_bounds

DEFAULT_CONTROL_RATE = 1000.0  # Hz, Franka's controller rate
DEFAULT_VELOCITY_FRACTION = 0.9
DEFAULT_ACCEL_FRACTION = 0.2
DEFAULT_JERK_FRACTION = 0.1
DEFAULT_BRAKE_MARGIN = 0.05  # rad
DEFAULT_MAX_STOP_TIME = 0.0  # s; 0: no stop-time speed cap
HELD_CYCLE_FACTOR = 0.4  # A <= 0.4 * jerk_max * dt tolerates one held controller cycle
BRAKE_ACCEL_SHARE = 0.5  # braking curve uses this share of the acceleration bound
STREAM_SLOWDOWN = 1.1  # a stop's messages may come this much slower than 1 / control_rate


def acceleration_bound(acc_max, jerk_max, dt: float, accel_fraction: float = DEFAULT_ACCEL_FRACTION):
    """Per-joint acceleration bound [rad/s^2] for a command stream with message period ``dt`` [s].

    ``min(accel_fraction * acc_max, 0.4 * jerk_max * dt)`` for Franka's limits ``acc_max``
    [rad/s^2] and ``jerk_max`` [rad/s^3] (sequences or arrays, per joint). The second term
    keeps a stream whose commands change by at most ``A * dt`` per message inside the
    acceleration and jerk limits even when the controller holds one message for an extra
    cycle and then reads a doubled step. Numpy in, numpy out.
    """
    acc_max = np.asarray(acc_max, dtype=float)
    jerk_max = np.asarray(jerk_max, dtype=float)
    return np.minimum(accel_fraction * acc_max, HELD_CYCLE_FACTOR * jerk_max * dt)


def stop_time_speed_cap(accel, jerk, dt: float, max_stop_time: float, detect_time: float):
    """Per-joint speed [rad/s] from which the filter stops a joint within ``max_stop_time`` [s].

    The time from the last good joint state to a zero command is at most ``detect_time``
    (the watchdog noticing, and the tick that follows, s) + ``v / A + 2 A / J`` (a
    jerk-limited stop from speed ``v``, entered while accelerating at up to ``A``) + a few
    message periods ``dt`` of rounding, the stop's messages coming up to ``STREAM_SLOWDOWN``
    times slower than ``dt`` (late ticks are not caught up); ``accel`` A [rad/s^2] and
    ``jerk`` J [rad/s^3] per joint. ``max_stop_time`` 0 means no cap (inf). ValueError when even a joint at rest
    could not be stopped in time.
    """
    accel = np.asarray(accel, dtype=float)
    if max_stop_time == 0.0:
        return np.full(accel.shape, np.inf)
    budget = ((max_stop_time - detect_time) / STREAM_SLOWDOWN
              - 2.0 * accel / np.asarray(jerk, dtype=float) - 4.0 * dt)
    if not np.all(budget > 0.0):
        raise ValueError("max_stop_time %.3f s is too short: detecting stale joint states takes "
                         "%.3f s and the jerk-limited stop itself %.3f s" % (
                             max_stop_time, detect_time, max_stop_time - detect_time - budget.min()))
    return accel * budget


def braking_velocity_bounds(q, pos_min, pos_max, brake_accel, margin: float = DEFAULT_BRAKE_MARGIN):
    """Lower and upper velocity bounds [rad/s] that stop a joint ``margin`` [rad] inside its limits.

    A joint at position ``q`` [rad] whose limit (minus ``margin``) is ``s`` rad away may move
    toward it at most ``sqrt(2 * brake_accel * s)`` [rad/s]; at or beyond the margin it may
    only move away (bound 0). ``brake_accel`` [rad/s^2] per joint or scalar; ``q`` (..., 7) a
    numpy array or a torch tensor (the training task limits its commands with this too), and
    the bounds come back of the same kind.
    """
    pos_min, pos_max, brake_accel = (like(q, v) for v in (pos_min, pos_max, brake_accel))
    room_up = (pos_max - margin - q).clip(0.0)
    room_down = (q - pos_min - margin).clip(0.0)
    return -(2.0 * brake_accel * room_down) ** 0.5, (2.0 * brake_accel * room_up) ** 0.5


@dataclass(frozen=True, eq=False)
class FilterLimits:
    """Everything the filter needs, per joint; build it with :meth:`from_joint_limits`."""

    joint_limits: JointLimits
    dt: float  # s, period of published messages (= of the robot's controller)
    velocity_fraction: float  # of Franka's (position-dependent) velocity bounds
    accel: np.ndarray  # rad/s^2, acceleration bound A per message
    jerk: np.ndarray  # rad/s^3, jerk bound J between messages
    brake_accel: np.ndarray  # rad/s^2, deceleration of the braking curve
    brake_margin: float  # rad, joints stop this far inside their position limits
    speed_cap: np.ndarray  # rad/s, stop-time speed cap (inf: none)
    pos_min: np.ndarray  # rad
    pos_max: np.ndarray  # rad

    @classmethod
    def from_joint_limits(cls, limits: JointLimits, control_rate: float = DEFAULT_CONTROL_RATE,
                          velocity_fraction: float = DEFAULT_VELOCITY_FRACTION,
                          accel_fraction: float = DEFAULT_ACCEL_FRACTION,
                          jerk_fraction: float = DEFAULT_JERK_FRACTION,
                          brake_margin: float = DEFAULT_BRAKE_MARGIN,
                          max_stop_time: float = DEFAULT_MAX_STOP_TIME,
                          detect_time: float = 0.0) -> "FilterLimits":
        """Filter bounds from Franka's ``limits``, fractions in (0, 1] and ``control_rate`` [Hz];
        ``max_stop_time`` [s] (0: none) and the watchdog's ``detect_time`` [s] give the speed cap."""
        for name, value in (("velocity_fraction", velocity_fraction), ("accel_fraction", accel_fraction),
                            ("jerk_fraction", jerk_fraction)):
            if not 0.0 < value <= 1.0:
                raise ValueError("%s must be in (0, 1], got %r" % (name, value))
        if not control_rate > 0.0:
            raise ValueError("control_rate must be > 0 Hz, got %r" % (control_rate,))
        if not brake_margin >= 0.0:
            raise ValueError("brake_margin must be >= 0 rad, got %r" % (brake_margin,))
        if not max_stop_time >= 0.0:
            raise ValueError("max_stop_time must be >= 0 s (0: no cap), got %r" % (max_stop_time,))
        dt = 1.0 / control_rate
        accel = acceleration_bound(limits.acc_max, limits.jerk_max, dt, accel_fraction)
        jerk = jerk_fraction * np.asarray(limits.jerk_max, dtype=float)
        return cls(
            joint_limits=limits,
            dt=dt,
            velocity_fraction=velocity_fraction,
            accel=accel,
            jerk=jerk,
            brake_accel=BRAKE_ACCEL_SHARE * accel,
            brake_margin=brake_margin,
            speed_cap=stop_time_speed_cap(accel, jerk, dt, max_stop_time, detect_time),
            pos_min=np.asarray(limits.pos_min, dtype=float),
            pos_max=np.asarray(limits.pos_max, dtype=float),
        )


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


def filter_step(limits: FilterLimits, state: FilterState, goal, q) -> Tuple[FilterState, FilterActivity]:
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
        limits.brake_margin)
    low = np.maximum(lower, brake_lower)
    high = np.minimum(upper, brake_upper)
    clamped = np.clip(goal, low, high)
    velocity_clamped = (goal < lower) | (goal > upper)
    braking = ((goal < brake_lower) & (brake_lower > lower)) | ((goal > brake_upper) & (brake_upper < upper))
    command, accel, accel_limited, jerk_limited = track_step(
        state.command, state.accel, clamped, limits.accel, limits.jerk, limits.dt)
    activity = FilterActivity(nonfinite, velocity_clamped, braking, accel_limited, jerk_limited)
    return FilterState(command, accel), activity
