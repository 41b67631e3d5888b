"""The safety filter's limits: per deploy interface, per joint.

What :mod:`reach_rl_core.safety_filter` enforces, and how each bound is chosen.

Both deploy interfaces (:data:`INTERFACES`) run the filter once per policy step (50 Hz) in
Python, and it only clamps the goal (velocity, braking, self-collision). The robot side meets
the acceleration and jerk bounds every 1 ms in compiled code, and ends each command on its
own ``command_hold`` after reaching it, whatever is late or dead on the Python side:

- ``ros2_control`` (topic path): one trajectory per policy step for franka_ros2's
  joint_trajectory_controller, which interpolates it every 1 ms in C++
  (:mod:`reach_rl_core.command_trajectory`): the command is reached within ``A`` and ``J``,
  held for ``command_hold``, then braked to rest by the trajectory itself.
- ``libfranka``: the 1 kHz loop runs in compiled code (franky-control: libfranka and
  Ruckig on a C++ thread without the GIL, :mod:`reach_rl_deploy.interfaces.franky_loop`); Ruckig
  reaches the command within ``A`` and ``J``, holds it, then brings the arm to rest.

Bounds, per joint (rad/s^2, rad/s^3):

* acceleration ``A = accel_fraction * acc_max``, handed to the robot side (and, per policy
  step, the most a command may change in training: :func:`~reach_rl_core.safety_filter.policy_command`).
  0.4 on libfranka (4 rad/s^2 on the FR3). 0.3 on the topic path: a command the robot holds
  for a cycle its controller missed and then resumes steps the acceleration by ``A``, 3000
  rad/s^3 at 3 rad/s^2, which leaves room under Franka's 5000 rad/s^3 for the rest (the stand-in
  on franka-sim, at 4 rad/s^2, reflexed within 10 targets: docs/measurements.md).
* jerk ``J = jerk_fraction * jerk_max``, handed to the robot side.
* velocity: ``velocity_fraction`` of Franka's (position-dependent) bounds, and on libfranka at
  most :data:`FRANKY_VELOCITY_MAX` (``velocity_cap``): franky's Ruckig refuses a target velocity
  above its own maximum, Panda's limits whatever the arm, and the motion ends.
* braking: toward a limit at distance ``s`` (position limit minus ``brake_margin``, rad) a
  joint may move at most ``sqrt(2 * (A / 2) * s)`` (with a ``hold_time`` the curve of
  :mod:`reach_rl_core.braking`, which also covers that much travel at the commanded speed).
  Following that curve needs only half the acceleration bound, which leaves the other half for
  the robot side's jerk-limited motion to catch up with the falling bound; and from a speed
  ``v`` on the curve a full jerk-limited stop (decelerate at ``A``, jerk ``J``) needs
  ``v^2/(2A) + v A/(2J)`` = ``s/2 + v A/(2J)`` which is ``<= s`` whenever ``s >= A^3/J^2``
  (2.6e-4 rad for the FR3 at 4 rad/s^2): always inside the margin.
* self-collision: Franka stops the arm (``self_collision_avoidance_violation``) when two links
  three or more apart in the chain come within 5 cm and keep closing. The goal's component
  that closes the smallest link separation of a conservative capsule model
  (:mod:`reach_rl_core.self_collision`) is limited to the braking curve that ends the
  approach at ``self_collision_stop`` (6 cm of the model, which is never farther than the
  robot's check), with half the deceleration the acceleration bound allows along that
  direction.
"""
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import numpy as np

from reach_rl_core.franka_model import PANDA, JointLimits

# The deploy interfaces' names, as the deploy node's and the launch file's ``interface``
# parameter, the training config's ``task.interface`` and the policy file spell them.
ROS2_CONTROL = "ros2_control"
LIBFRANKA = "libfranka"
INTERFACES = (ROS2_CONTROL, LIBFRANKA)
DEFAULT_INTERFACE = ROS2_CONTROL  # deploy node, launch file and training, unless told otherwise

# The one source of each default that more than one package uses (deploy parameters, launch
# file, simulated robots, training config); the others import these.
DEFAULT_CONTROL_RATE = 1000.0  # Hz, Franka's control rate: one controller cycle per ms
DEFAULT_VELOCITY_FRACTION = 0.9  # of Franka's velocity bounds, deploy filter and training alike
# s, the deploy node's watchdog (ros2_control): joint states older than this stop the arm
# (20 of Franka's 1 ms cycles, one 50 Hz policy period).
DEFAULT_STATE_TIMEOUT = 0.02
DEFAULT_ACCEL_FRACTION = 0.4  # libfranka's (module docstring)
TRAJECTORY_ACCEL_FRACTION = 0.3  # the topic path's (module docstring)
DEFAULT_JERK_FRACTION = 0.1
DEFAULT_BRAKE_MARGIN = 0.05  # rad
# rad: pose policies train, and their files command, with every joint braked this far inside its
# limits; their IK keeps the same clearance (pose_target.LIMIT_CLEARANCE). franka-sim's pose goal
# is every joint 0.2 rad clear: with 0.05 joint 7 came within 0.11 rad chasing yaws at its ends,
# with 0.2 within 0.193 (the measured arm overshoots the commanded brake by up to 7 mrad).
POSE_BRAKE_MARGIN = 0.215
DEFAULT_SELF_COLLISION_STOP = 0.06  # m of the capsule model; 0: no self-collision limit
BRAKE_ACCEL_SHARE = 0.5  # braking curve uses this share of the acceleration bound
# rad/s: franky-control's Robot.joint_velocity_limit.max, which its Ruckig will not plan beyond
# ("Waypoint velocity ... exceeds maximum velocity", the motion fails): Panda's velocity limits
# on either arm (franky_loop logs the limits it sets at connection).
FRANKY_VELOCITY_MAX = PANDA.vel_max


class InterfaceDefaults(NamedTuple):
    """Filter settings of one deploy interface."""

    accel_fraction: float  # of Franka's acceleration limits
    jerk_fraction: float  # of Franka's jerk limits
    # s the robot side keeps a command before braking to rest on its own: ros2_control, the
    # next policy period plus one of margin; libfranka, long enough for a 100 ms GIL stall
    command_hold: float
    # SCHED_FIFO priority on the deploy side: ros2_control, every thread of the deploy node
    # (below the controller manager's 50, so a late node never delays the 1 kHz loop);
    # libfranka, franky's 1 kHz control thread alone (its Python threads stay ordinary)
    rt_priority: int
    # rad/s per joint that the robot side accepts at most, beside Franka's bounds; None: those
    velocity_cap: Optional[Tuple[float, ...]] = None


INTERFACE_DEFAULTS = {
    ROS2_CONTROL: InterfaceDefaults(TRAJECTORY_ACCEL_FRACTION, DEFAULT_JERK_FRACTION, 0.04, 40),
    LIBFRANKA: InterfaceDefaults(DEFAULT_ACCEL_FRACTION, DEFAULT_JERK_FRACTION, 0.1, 80,
                                 FRANKY_VELOCITY_MAX),
}


def interface_defaults(interface: str) -> InterfaceDefaults:
    """Defaults of ``interface`` (one of :data:`INTERFACES`); ValueError for anything else."""
    try:
        return INTERFACE_DEFAULTS[interface]
    except KeyError:
        raise ValueError("unknown interface %r: expected one of %s"
                         % (interface, ", ".join(INTERFACES))) from None


@dataclass(frozen=True, eq=False)
class FilterLimits:
    """Everything the filter needs, per joint; build it with :meth:`from_joint_limits`."""

    joint_limits: JointLimits
    dt: float  # s, period of the filter's commands (deploy: one per policy step)
    velocity_fraction: float  # of Franka's (position-dependent) velocity bounds
    accel: np.ndarray  # rad/s^2, acceleration bound A (the robot side's)
    jerk: np.ndarray  # rad/s^3, jerk bound J (the robot side's)
    brake_accel: np.ndarray  # rad/s^2, deceleration of the braking curve
    brake_margin: float  # rad, joints stop this far inside their position limits
    pos_min: np.ndarray  # rad
    pos_max: np.ndarray  # rad

    interface: str = DEFAULT_INTERFACE  # the deploy interface these limits were sized for
    self_collision_stop: float = DEFAULT_SELF_COLLISION_STOP  # m; 0: off
    command_hold: float = 0.0  # s the robot side keeps a command after reaching it (0: none)
    # s a command may stay in force before anything lowers it (braking curves allow for it)
    hold_time: float = 0.0
    velocity_cap: Optional[np.ndarray] = None  # rad/s per joint, the robot side's; None: none

    @classmethod
    def from_joint_limits(cls, limits: JointLimits, control_rate: float = DEFAULT_CONTROL_RATE,
                          velocity_fraction: float = DEFAULT_VELOCITY_FRACTION,
                          accel_fraction: float = DEFAULT_ACCEL_FRACTION,
                          jerk_fraction: float = DEFAULT_JERK_FRACTION,
                          brake_margin: float = DEFAULT_BRAKE_MARGIN,
                          interface: str = DEFAULT_INTERFACE,
                          command_hold: float = 0.0,
                          velocity_cap: Optional[Tuple[float, ...]] = None) -> "FilterLimits":
        """Filter bounds from Franka's ``limits``, fractions in (0, 1] and the rate of the
        filter's commands ``control_rate`` [Hz] (deploy: the policy's); ``interface``
        (:data:`INTERFACES`) is recorded for the policy file's check. ``command_hold`` [s]: how
        long the robot side keeps a command after reaching it; the braking curves allow for
        that hold, the command period and the jerk ramp to the command. ``velocity_cap`` [rad/s]:
        the most the robot side accepts per joint, beside Franka's bounds (None: no other)."""
        interface_defaults(interface)  # ValueError for an unknown one
        for name, value in (("velocity_fraction", velocity_fraction), ("accel_fraction", accel_fraction),
                            ("jerk_fraction", jerk_fraction)):
            if not 0.0 < value <= 1.0:
                raise ValueError("%s must be in (0, 1], got %r" % (name, value))
        if not control_rate > 0.0:
            raise ValueError("control_rate must be > 0 Hz, got %r" % (control_rate,))
        if not brake_margin >= 0.0:
            raise ValueError("brake_margin must be >= 0 rad, got %r" % (brake_margin,))
        if not command_hold >= 0.0:
            raise ValueError("command_hold must be >= 0 s, got %r" % (command_hold,))
        dt = 1.0 / control_rate
        accel = accel_fraction * np.asarray(limits.acc_max, dtype=float)
        jerk = jerk_fraction * np.asarray(limits.jerk_max, dtype=float)
        return cls(
            joint_limits=limits,
            dt=dt,
            velocity_fraction=velocity_fraction,
            accel=accel,
            jerk=jerk,
            brake_accel=BRAKE_ACCEL_SHARE * accel,
            brake_margin=brake_margin,
            pos_min=np.asarray(limits.pos_min, dtype=float),
            pos_max=np.asarray(limits.pos_max, dtype=float),
            interface=interface,
            command_hold=command_hold,
            hold_time=command_hold + dt + float(np.max(accel / jerk)) if command_hold else 0.0,
            velocity_cap=None if velocity_cap is None else np.asarray(velocity_cap, dtype=float),
        )

    @classmethod
    def for_interface(cls, limits: JointLimits, interface: str,
                      control_rate: float = DEFAULT_CONTROL_RATE,
                      velocity_fraction: float = DEFAULT_VELOCITY_FRACTION,
                      accel_fraction: Optional[float] = None, jerk_fraction: Optional[float] = None,
                      command_hold: float = 0.0,
                      brake_margin: float = DEFAULT_BRAKE_MARGIN) -> "FilterLimits":
        """:meth:`from_joint_limits` with ``interface``'s defaults (:data:`INTERFACE_DEFAULTS`)
        for every setting left None or negative (-1 is how the deploy node's parameters and the
        training config say "the interface's"); ``command_hold`` 0, the default, is none (the
        training simulator holds no command)."""
        d = interface_defaults(interface)

        def given(value: Optional[float], default: float) -> float:
            return default if value is None or value < 0.0 else value

        return cls.from_joint_limits(
            limits, control_rate, velocity_fraction, given(accel_fraction, d.accel_fraction),
            given(jerk_fraction, d.jerk_fraction), brake_margin, interface=interface,
            command_hold=given(command_hold, d.command_hold), velocity_cap=d.velocity_cap)
