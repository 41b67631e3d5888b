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

Bounds, per joint (rad/s^2, rad/s^3):

* acceleration ``A = min(accel_fraction * acc_max, late_factor * jerk_max * dt)``. The
  second term covers one late message, and what a late message does depends on the
  deploy interface (:data:`INTERFACES`):

  - ``ros2_control`` (topic path): franka_ros2's JointGroupVelocityController holds the
    last command, so the robot reads accelerations ``a, 0, 2a`` (the command held one
    extra cycle, then a doubled step): ``2A <= 0.8 jerk_max dt`` keeps the jerk at 0.8
    ``jerk_max`` and the acceleration at ``2A``; late factor 0.4, FR3 at 1 kHz 2.0 rad/s^2.
    The controller also holds a command for ever when the node dies, so the node caps
    the speed (``max_stop_time``) to stop in time on its own watchdog.
  - ``libfranka``: the 1 kHz loop runs in compiled code (franky-control: libfranka and
    Ruckig on a C++ thread without the GIL, :mod:`reach_rl_deploy.franky_loop`), and the
    filter runs once per policy step (50 Hz) in Python. It only clamps the goal (velocity,
    braking, self-collision); the acceleration and jerk bounds are handed to Ruckig, which
    meets them every 1 ms cycle whenever Python is late (:attr:`FilterLimits.tracking`
    False), so no late-message term applies (late factor inf). Each command is held for at
    most ``hold_time`` before the C++ side brings the arm to rest on its own; the braking
    curves below allow for that hold. A dead process stops the robot itself
    (``communication_constraints_violation``, or the FCI's end of session), so no stop-time
    speed cap is needed (``max_stop_time`` 0).
* jerk ``J = jerk_fraction * jerk_max`` between consecutive messages.
* braking: toward a limit at distance ``s`` (position limit minus ``brake_margin``, rad) a
  joint may move at most ``sqrt(2 * (A / 2) * s)`` (with a ``hold_time`` the curve of
  :mod:`reach_rl_core.braking`, which also covers that much travel at the commanded speed).
  Following that curve needs only half the acceleration bound, which leaves the other half for the jerk-limited tracker to
  catch up with the falling bound; and from a speed ``v`` on the curve a full jerk-limited
  stop (decelerate at ``A``, jerk ``J``) needs ``v^2/(2A) + v A/(2J)`` = ``s/2 + v A/(2J)``
  which is ``<= s`` whenever ``s >= A^3/J^2`` (3.2e-5 rad for the FR3): always inside the
  margin.
* self-collision: Franka stops the arm (``self_collision_avoidance_violation``) when two links
  three or more apart in the chain come within 5 cm and keep closing. The goal's component
  that closes the smallest link separation of a conservative capsule model
  (:mod:`reach_rl_core.self_collision`) is limited to the braking curve that ends the
  approach at ``self_collision_stop`` (6 cm of the model, which is never farther than the
  robot's check), with half the deceleration the acceleration bound allows along that
  direction.
* stop-time speed cap: with ``max_stop_time`` set, no joint moves faster than the speed
  from which a jerk-limited stop ends within ``max_stop_time`` of the last good joint state
  (:func:`stop_time_speed_cap`). Stopping takes ``v / A``, so a fast stop needs a slow arm:
  at A = 2 rad/s^2 a 0.2 s stop allows about a quarter of a rad/s.

Plain numpy; the deploy side never imports torch. The training simulator imports
:class:`FilterLimits` and :func:`braking_velocity_bounds` to limit its commands the
same way.
"""
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import numpy as np

from reach_rl_core.braking import braking_speed
from reach_rl_core.franka_model import NUM_JOINTS, JointLimits, array_namespace, like, velocity_bounds
from reach_rl_core.self_collision import limit_closing_velocity, separation_and_gradient

DEFAULT_CONTROL_RATE = 1000.0  # Hz, Franka's controller rate
DEFAULT_VELOCITY_FRACTION = 0.9
DEFAULT_ACCEL_FRACTION = 0.2
LIBFRANKA_ACCEL_FRACTION = 0.4  # the libfranka interface's (module docstring)
DEFAULT_JERK_FRACTION = 0.1
DEFAULT_BRAKE_MARGIN = 0.05  # rad
DEFAULT_MAX_STOP_TIME = 0.0  # s; 0: no stop-time speed cap
DEFAULT_SELF_COLLISION_STOP = 0.06  # m of the capsule model; 0: no self-collision limit
BRAKE_ACCEL_SHARE = 0.5  # braking curve uses this share of the acceleration bound
# A stop's messages may come this much slower than 1 / control_rate: a loaded machine's
# stream is (README, "Stop time versus speed").
STREAM_SLOWDOWN = 1.25
# s: the deploy node's default watchdog (0.02 s state timeout) and the 1.5 periods at 1 kHz
# until its next tick (deploy_controller.detection_time): what the default speed cap allows for.
DEFAULT_DETECT_TIME = 0.0215

ROS2_CONTROL = "ros2_control"
LIBFRANKA = "libfranka"
INTERFACES = (ROS2_CONTROL, LIBFRANKA)


class InterfaceDefaults(NamedTuple):
    """Filter settings of one deploy interface (module docstring: why they differ)."""

    late_factor: float  # A <= late_factor * jerk_max * dt tolerates one late message
    accel_fraction: float  # of Franka's acceleration limits
    jerk_fraction: float  # of Franka's jerk limits
    max_stop_time: float  # s; 0: no stop-time speed cap
    tracking: bool  # the filter tracks the goal jerk-limited (else the robot side does)


INTERFACE_DEFAULTS = {
    ROS2_CONTROL: InterfaceDefaults(0.4, DEFAULT_ACCEL_FRACTION, DEFAULT_JERK_FRACTION, 0.2, True),
    LIBFRANKA: InterfaceDefaults(np.inf, LIBFRANKA_ACCEL_FRACTION, DEFAULT_JERK_FRACTION, 0.0,
                                 False),
}


def interface_defaults(interface: str) -> InterfaceDefaults:
    """Defaults of ``interface`` (one of :data:`INTERFACES`); ValueError for anything else."""
    try:
        return INTERFACE_DEFAULTS[interface]
    except KeyError:
        raise ValueError("unknown interface %r: expected one of %s"
                         % (interface, ", ".join(INTERFACES))) from None


def acceleration_bound(acc_max, jerk_max, dt: float, accel_fraction: float = DEFAULT_ACCEL_FRACTION,
                       late_factor: float = INTERFACE_DEFAULTS[ROS2_CONTROL].late_factor):
    """Per-joint acceleration bound [rad/s^2] for a command stream with message period ``dt`` [s].

    ``min(accel_fraction * acc_max, late_factor * jerk_max * dt)`` for Franka's limits
    ``acc_max`` [rad/s^2] and ``jerk_max`` [rad/s^3] (sequences or arrays, per joint). The
    second term keeps a stream whose commands change by at most ``A * dt`` per message
    inside the acceleration and jerk limits even when one message is late (module
    docstring: 0.4 on the topic path, inf on libfranka). Numpy in, numpy out.
    """
    acc_max = np.asarray(acc_max, dtype=float)
    jerk_max = np.asarray(jerk_max, dtype=float)
    return np.minimum(accel_fraction * acc_max, late_factor * jerk_max * dt)


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

    interface: str = ROS2_CONTROL  # the deploy interface these limits were sized for
    self_collision_stop: float = DEFAULT_SELF_COLLISION_STOP  # m; 0: off
    # s a command may stay in force before anything lowers it (braking curves allow for it)
    hold_time: float = 0.0
    # True: filter_step tracks the goal with bounded acceleration and jerk every message;
    # False: it only clamps the goal, a trajectory generator downstream meets accel and jerk
    tracking: bool = True

    @classmethod
    def from_joint_limits(cls, limits: JointLimits, control_rate: float = DEFAULT_CONTROL_RATE,
                          velocity_fraction: float = DEFAULT_VELOCITY_FRACTION,
                          accel_fraction: float = DEFAULT_ACCEL_FRACTION,
                          jerk_fraction: float = DEFAULT_JERK_FRACTION,
                          brake_margin: float = DEFAULT_BRAKE_MARGIN,
                          max_stop_time: float = DEFAULT_MAX_STOP_TIME,
                          detect_time: float = 0.0,
                          interface: str = ROS2_CONTROL,
                          command_hold: float = 0.0) -> "FilterLimits":
        """Filter bounds from Franka's ``limits``, fractions in (0, 1] and ``control_rate`` [Hz];
        ``max_stop_time`` [s] (0: none) and the watchdog's ``detect_time`` [s] give the speed cap;
        ``interface`` (:data:`INTERFACES`) decides how much a late message may cost and who
        tracks the goal. ``command_hold`` [s]: how long the robot side keeps a command after
        reaching it (libfranka: franky's motion duration); the braking curves allow for that
        hold, the message period and the jerk ramp to the command."""
        defaults = interface_defaults(interface)
        late_factor = defaults.late_factor
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
        if not command_hold >= 0.0:
            raise ValueError("command_hold must be >= 0 s, got %r" % (command_hold,))
        dt = 1.0 / control_rate
        accel = acceleration_bound(limits.acc_max, limits.jerk_max, dt, accel_fraction, late_factor)
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
            interface=interface,
            hold_time=command_hold + dt + float(np.max(accel / jerk)) if command_hold else 0.0,
            tracking=defaults.tracking,
        )

    @classmethod
    def for_interface(cls, limits: JointLimits, interface: str,
                      control_rate: float = DEFAULT_CONTROL_RATE,
                      velocity_fraction: float = DEFAULT_VELOCITY_FRACTION,
                      accel_fraction: Optional[float] = None, jerk_fraction: Optional[float] = None,
                      max_stop_time: Optional[float] = None,
                      detect_time: float = 0.0, command_hold: float = 0.0) -> "FilterLimits":
        """:meth:`from_joint_limits` with ``interface``'s defaults (:data:`INTERFACE_DEFAULTS`)
        for every setting left None or negative (-1 is how the deploy node's parameters and the
        training config say "the interface's")."""
        d = interface_defaults(interface)

        def given(value: Optional[float], default: float) -> float:
            return default if value is None or value < 0.0 else value

        return cls.from_joint_limits(
            limits, control_rate, velocity_fraction, given(accel_fraction, d.accel_fraction),
            given(jerk_fraction, d.jerk_fraction),
            max_stop_time=given(max_stop_time, d.max_stop_time),
            detect_time=detect_time, interface=interface, command_hold=command_hold)


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
