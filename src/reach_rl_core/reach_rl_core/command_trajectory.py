"""One policy command as a joint trajectory: reach the command, hold it, then come to rest.

The topic path sends the safety filter's command to joint_trajectory_controller once per
policy step. Each message is the motion the arm should make if it were the last one:

1. from the reference's current state (position, velocity, acceleration) change the joint
   velocities to the command ``goal`` [rad/s] as fast as the acceleration bound ``A``
   [rad/s^2] and the jerk bound ``J`` [rad/s^3] allow (:func:`velocity_change`);
2. keep doing so until ``hold`` [s] after the message's start (the next policy period plus a
   margin: normally the next message replaces this one long before);
3. then come to rest the same way, ending at zero velocity and acceleration.

A node that stalls or dies therefore leaves the arm braking smoothly to rest on its own.
:class:`TrajectoryStream` makes consecutive messages replace each other without a step. The
velocity profile is the time-optimal one under ``A`` and ``J`` (constant jerk ``+J``, ``0`` or
``-J`` per piece, :func:`velocity_change`), integrated exactly; :func:`command_trajectory`
samples it every ``knot_dt`` into a :class:`~reach_rl_core.trajectory_spline.Trajectory` whose
quintic interpolation (JTC's splines) follows it closely.

Units: rad, rad/s, rad/s^2, rad/s^3, s; arrays of 7 joints. numpy only.
"""
from typing import NamedTuple, Optional

import numpy as np

from reach_rl_core.trajectory_spline import JointState3, Trajectory, sample

PIECES = 3  # jerk +J, 0, -J (in the direction of the change)
MIN_GAP = 0.001  # s, the shortest segment a message repeating the last one gets


class Pieces(NamedTuple):
    """Per joint, consecutive pieces of constant jerk: ``durations`` [s] and ``jerks``
    [rad/s^3], shape (7, PIECES); after the last piece the jerk is 0."""

    durations: np.ndarray
    jerks: np.ndarray


def velocity_change(velocity, acceleration, target, accel_bound, jerk_bound) -> Pieces:
    """The fastest change from ``velocity`` [rad/s] and ``acceleration`` [rad/s^2] to ``target``
    [rad/s] at zero acceleration with ``|a| <= accel_bound`` and ``|jerk| <= jerk_bound``.

    In the direction ``s`` of the change (the sign of ``target`` minus the velocity reached by
    bringing the acceleration to 0 at once), the acceleration goes to a peak ``ap`` (jerk
    ``s J``), stays there, and returns to 0 (jerk ``-s J``). The velocity gained is
    ``(2 ap^2 - a^2) / (2 J) + ap t_const`` along ``s``, which gives ``ap``, capped at ``A``.
    """
    J = np.asarray(jerk_bound, dtype=float)
    A = np.asarray(accel_bound, dtype=float)
    a = np.clip(np.asarray(acceleration, dtype=float), -A, A)
    v = np.asarray(velocity, dtype=float)
    v_stop = v + a * np.abs(a) / (2.0 * J)
    s = np.where(np.asarray(target, dtype=float) >= v_stop, 1.0, -1.0)
    gain = s * (np.asarray(target, dtype=float) - v)  # velocity to gain along s, >= s a|a|/(2J)
    a_s = s * a
    peak = np.sqrt(np.maximum(2.0 * J * gain + a_s * a_s, 0.0) / 2.0)
    capped = peak > A
    peak = np.where(capped, A, peak)
    constant = np.where(capped, (gain - (2.0 * A * A - a_s * a_s) / (2.0 * J)) / A, 0.0)
    pieces = np.broadcast_arrays((peak - a_s) / J, np.maximum(constant, 0.0), peak / J,
                                 s * J, 0.0 * s * J, -s * J)
    durations = np.stack(pieces[:PIECES], axis=-1)
    return Pieces(np.maximum(durations, 0.0), np.stack(pieces[PIECES:], axis=-1))


def evaluate(start: JointState3, pieces: Pieces, t) -> JointState3:
    """The state at time ``t`` [s, scalar >= 0] after ``start``, following ``pieces`` (then
    constant acceleration, zero once a change is complete)."""
    p, v, a = (np.array(x, dtype=float) for x in start)
    left = np.full(p.shape, float(t))
    for k in range(pieces.durations.shape[-1]):
        tau = np.minimum(left, pieces.durations[..., k])
        j = pieces.jerks[..., k]
        p = p + v * tau + a * tau ** 2 / 2.0 + j * tau ** 3 / 6.0
        v = v + a * tau + j * tau ** 2 / 2.0
        a = a + j * tau
        left = left - tau
    p = p + v * left + a * left ** 2 / 2.0
    v = v + a * left
    return JointState3(p, v, a)


def command_trajectory(start: JointState3, goal, hold: float, accel_bound, jerk_bound,
                       knot_dt: float) -> Trajectory:
    """The trajectory of one command (module docstring): from ``start`` toward ``goal``
    [rad/s] until ``hold`` [s], then to rest; points every ``knot_dt`` [s] from ``knot_dt`` on,
    the last one at rest (zero velocity and acceleration) once every joint has stopped."""
    if not (hold > 0.0 and knot_dt > 0.0):
        raise ValueError("hold and knot_dt must be > 0 s, got %r and %r" % (hold, knot_dt))
    toward_goal = velocity_change(start.velocity, start.acceleration, goal, accel_bound,
                                  jerk_bound)
    at_hold = evaluate(start, toward_goal, hold)
    to_rest = velocity_change(at_hold.velocity, at_hold.acceleration,
                              np.zeros_like(at_hold.velocity), accel_bound, jerk_bound)
    rest_after = hold + float(np.max(np.sum(to_rest.durations, axis=-1)))
    count = max(1, int(np.ceil(rest_after / knot_dt - 1e-9)))
    times = knot_dt * np.arange(1, count + 1)
    states = [evaluate(start, toward_goal, t) if t <= hold else evaluate(at_hold, to_rest, t - hold)
              for t in times]
    positions = np.array([s.position for s in states])
    velocities = np.array([s.velocity for s in states])
    accelerations = np.array([s.acceleration for s in states])
    velocities[-1] = 0.0  # at rest to rounding: exactly, as JTC requires of a last point
    accelerations[-1] = 0.0
    return Trajectory(times, positions, velocities, accelerations)


class TrajectoryStream:
    """The topic path's messages, one per policy tick, each replacing the last without a step.

    JTC takes a message over at its first update after receiving it, a little after the stamp
    (transport, up to one controller period, a loaded machine), and does not splice old and new
    (ros2_controllers #1978). So each message stamped ``now`` first repeats where the last one
    has the reference, from ``now`` for ``takeover_margin`` [s] (the first point at time 0;
    exactly, :meth:`_lead_times`): a takeover within that margin finds the new reference equal
    to the old one. Only then does it change the command
    (:func:`command_trajectory` toward ``goal``, held for ``hold``, then to rest). A takeover
    later than the margin would step the reference by what old and new differ since then.
    Before the first message, and once the last one is over (its last point, at rest), a message
    starts at rest at the measured position (where JTC holds the arm on activation, and about
    where the last point holds it).
    """

    def __init__(self, accel_bound, jerk_bound, hold: float, knot_dt: float,
                 takeover_margin: float):
        self.accel_bound = np.asarray(accel_bound, dtype=float)
        self.jerk_bound = np.asarray(jerk_bound, dtype=float)
        self.hold = hold
        self.knot_dt = knot_dt
        self.margin = takeover_margin
        self.last = None  # type: Optional[Trajectory]
        self.last_start = 0.0  # s, the last message's start (its stamp)

    def _lead_times(self, now: float) -> np.ndarray:
        """Times [s from ``now``] of the points that repeat the last message over the margin:
        its own points inside the margin, and the margin's two ends. Each segment then lies
        inside one of the last message's quintic segments, and the quintic through a segment's
        ends is that segment's own: the copy is exact (resampling every knot_dt would not be,
        by up to 5 mrad/s where the profile's jerk switches inside a segment). Its points
        within MIN_GAP of an end are left out (a copy within a few mrad/s there)."""
        inside = self.last.times - (now - self.last_start)
        inside = inside[(inside > MIN_GAP) & (inside < self.margin - MIN_GAP)]
        return np.concatenate([[0.0], inside, [self.margin]])

    def reference(self, now: float) -> Optional[JointState3]:
        """Where the controller's reference is at ``now`` [s, the stamps' clock], as far as the
        messages sent tell (None before the first)."""
        if self.last is None:
            return None
        return sample(self.last, (0.0, self.last.point(0)), now - self.last_start)

    def next(self, now: float, goal, measured_position) -> Trajectory:
        """:meth:`plan`'s message, recorded as :meth:`sent`."""
        trajectory = self.plan(now, goal, measured_position)
        self.sent(trajectory, now)
        return trajectory

    def sent(self, trajectory: Trajectory, now: float) -> None:
        """``trajectory``, stamped ``now`` [s], was sent: the next message repeats it."""
        self.last, self.last_start = trajectory, now

    def plan(self, now: float, goal, measured_position) -> Trajectory:
        """The message to stamp ``now`` [s]: the reference for the takeover margin, then toward
        ``goal`` [rad/s]; from rest at ``measured_position`` [rad] once the last message is over
        (its last point at rest). Nothing is recorded (:meth:`sent`)."""
        if self.last is None or now >= self.last_start + self.last.duration:
            lead_times = np.array([0.0, self.margin])
            lead = [JointState3.at_rest(measured_position)] * 2
        else:
            lead_times = self._lead_times(now)
            lead = [self.reference(now + t) for t in lead_times]
        tail = command_trajectory(lead[-1], goal, self.hold, self.accel_bound, self.jerk_bound,
                                  self.knot_dt)
        return Trajectory(
            np.concatenate([lead_times, lead_times[-1] + tail.times]),
            np.concatenate([[s.position for s in lead], tail.positions]),
            np.concatenate([[s.velocity for s in lead], tail.velocities]),
            np.concatenate([[s.acceleration for s in lead], tail.accelerations]))
