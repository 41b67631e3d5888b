"""The safety filter's limits: per deploy interface, per joint, per message.

What :mod:`reach_rl_core.safety_filter` enforces, and how each bound is chosen.

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
"""
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from reach_rl_core.franka_model import JointLimits

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
