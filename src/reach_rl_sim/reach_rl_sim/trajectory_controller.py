"""A model of ros2_controllers' joint_trajectory_controller (JTC, Jazzy 4.x) as the topic path
configures it, for trajectories received on ``~/joint_trajectory``. Plain numpy, no ROS.

The configuration modelled: command interface ``velocity`` only, state interfaces ``position``
and ``velocity``, ``interpolation_method: splines``, ``interpolate_from_desired_state: true``,
``allow_nonzero_velocity_at_trajectory_end: false``, ``allow_partial_joints_goal: false``,
``allow_integration_in_goal_trajectories: false``, gains ``p`` per joint with ``i = d = 0``,
``ff_velocity_scale``, ``cmd_timeout: 0`` and ``constraints.goal_time: 0`` with no tolerances
(so nothing aborts or times out).

Times are seconds on one clock, the one the messages' ``header.stamp`` uses (the controller
manager's: the system clock unless simulated time is in use). Positions are joint angles [rad],
velocities [rad/s], accelerations [rad/s^2], arrays of the controller's joints in the
controller's order.

Where each behaviour comes from (the sources named in the research notes on JTC in Jazzy: the
controller's source file ``joint_trajectory_controller.cpp`` and ``trajectory.cpp`` of the 4.2x
line, its ``userdoc.rst``/``trajectory.rst``, the Jazzy release notes, and ros2_controllers
threads #1505/#1525, #1978/#1979, #902, #834, #2043, #1306; besides, PR #780, which stamps the
stored state with the time of the update that commanded it):

* **Validation** (:func:`validate`, the controller's check of each message in its subscription
  callback): the joint count must equal the controller's (partial goals off), the names must
  not be empty and each must be one of the controller's; there must be at least one point
  (#902); the last point's velocities must all be within float32 epsilon of zero (#834: false
  is Jazzy's default for ``allow_nonzero_velocity_at_trajectory_end``); with a nonzero stamp
  the stamp plus the last point's time must not be before the controller's now; the points'
  times must be strictly increasing from the second point on; positions must match the joint
  count on every point, velocities and accelerations must too where present; effort is refused
  without an effort interface. A refused message changes nothing: the current trajectory runs
  on. The last point's acceleration is not checked.
* **Replacement** (the source's comment that a new message always replaces the old one;
  #1978/#1979: no splicing in Jazzy): an accepted message becomes the pending one, replacing
  any message still pending; at the next update it takes over, its points reordered to the
  controller's joints.
* **Takeover** (``interpolate_from_desired_state``, #1505/#1525): the first update of a new
  trajectory stores a *point before the trajectory*: the state the previous update commanded
  (its sample one period ahead, below) stamped with that update's time -- not the time that
  state was sampled for (#780 came before #1306 made the command a sample one period ahead).
  Before the first point the reference is the spline from that stored point to point 0;
  missing accelerations of the stored point are zeros (#2043). So a trajectory whose first
  point comes after its takeover starts with a transient: the spline has to take back one
  period of travel before point 0.
* **Start time**: the stamp if it is nonzero, else the time of the first update that samples
  the message. A future stamp stretches the segment to point 0; a past stamp whose end is still
  ahead starts sampling inside a later segment (the reference jumps there).
* **Sampling** (``trajectory.cpp``; :func:`reference`): quintic splines between points with
  positions, velocities and accelerations (:func:`reach_rl_core.trajectory_spline.sample`);
  after the last point the last point itself, held.
* **Control law** (the update of a velocity-only JTC with the PID adapter): each update samples
  the desired state at now and the *next* state at now + one update period (#1306), and
  commands ``ff_velocity_scale * next.velocity + p * (desired.position - measured.position)``
  (i = d = 0, so the measured velocity does not enter).
* **Activation**: the controller holds the measured position (a one-point trajectory at the
  measured positions with zero velocity, started at once); pending messages are dropped.
  **Deactivation** writes zero velocity commands; messages received while inactive are dropped.

Judged only against the documentation and the stored sources named above, never run against a
built JTC: the one-period offset of the stored point before the trajectory, the comparison of
a nonzero stamp with the time of the subscription callback (``receive``'s ``now_s``), what
happens between a message's receipt and the next update, and the trajectory's time: JTC sums
the update periods since the takeover (#1395), this model takes each update's time, the same
while every period is the time since the previous update. Not modelled: linear or cubic
segments (messages without velocities or accelerations are refused here with a reason that
says so), continuous (wrap-around) joints, path and goal tolerances, ``cmd_timeout``,
interpolation ``none``, the action interface, speed scaling (not in Jazzy), and what JTC does
with a duplicated joint name (not rejected by its validation; refused here).
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from reach_rl_core.trajectory_spline import JointState3, Trajectory, sample, segment_at

FLOAT32_EPSILON = float(np.finfo(np.float32).eps)  # JTC's "zero" for a last-point velocity
NOT_MODELLED = "not modelled here: "  # prefix of reasons for messages JTC itself accepts
DROPPED_INACTIVE = "controller inactive: message dropped"


def _field_size_error(field: str, rows, count: int, allow_empty: bool) -> str:
    """'' if each point's ``field`` has ``count`` values (or none, where ``allow_empty``)."""
    for i, row in enumerate(rows):
        if allow_empty and len(row) == 0:
            continue
        if len(row) != count:
            return "point %d has %d %s for %d joints" % (i, len(row), field, count)
    return ""


def validate(controller_joints: Sequence[str], names: Sequence[str], stamp_s: float,
             times: Sequence[float], positions, velocities, accelerations, now_s: float,
             efforts=None) -> str:
    """Why JTC refuses the message, or '' when it accepts it (module docstring, Validation).

    ``names``: the message's joint names; ``stamp_s``: its header.stamp [s], 0 for "start at
    the next update"; ``times``: each point's time_from_start [s]; ``positions``,
    ``velocities``, ``accelerations``, ``efforts``: per point, a sequence of values in the
    message's joint order (possibly empty); ``now_s``: the controller's time at receipt [s].
    """
    count = len(controller_joints)
    if len(names) != count:
        return "the message names %d joints, the controller has %d" % (len(names), count)
    if len(names) == 0:
        return "no joint names"
    if len(times) == 0:
        return "no points"
    for name in names:
        if name not in controller_joints:
            return "joint %r is not one of the controller's" % (name,)
    last_velocity = velocities[-1] if len(velocities) == len(times) else ()
    for name, value in zip(names, last_velocity):
        if abs(value) > FLOAT32_EPSILON:
            return "the last point's velocity of %s is %.9g, not 0" % (name, value)
    if stamp_s != 0.0 and stamp_s + float(times[-1]) < now_s:
        return ("the message starts at %.6f s (nonzero stamp) and ends %.6f s in the past"
                % (stamp_s, now_s - stamp_s - float(times[-1])))
    for i in range(1, len(times)):
        if not times[i] > times[i - 1]:
            return ("time_from_start is not strictly increasing: point %d at %.6f s, point %d "
                    "at %.6f s" % (i - 1, times[i - 1], i, times[i]))
    for field, rows, allow_empty in (("positions", positions, False),
                                     ("velocities", velocities, True),
                                     ("accelerations", accelerations, True)):
        if len(rows) != len(times):
            return "%d points but %d rows of %s" % (len(times), len(rows), field)
        error = _field_size_error(field, rows, count, allow_empty)
        if error:
            return error
    if efforts is not None and any(len(row) for row in efforts):
        return "effort values without an effort command interface"
    if len(set(names)) != len(names):
        return NOT_MODELLED + "a joint named twice"
    if any(len(row) == 0 for row in velocities) or any(len(row) == 0 for row in accelerations):
        return NOT_MODELLED + "points without velocities or accelerations (linear or cubic splines)"
    return ""


def reorder(controller_joints: Sequence[str], names: Sequence[str], rows) -> np.ndarray:
    """``rows`` (N, joints in the message's order ``names``) as (N, joints) in the controller's
    order ``controller_joints``."""
    order = [list(names).index(name) for name in controller_joints]
    return np.asarray(rows, dtype=float)[:, order]


class ActiveTrajectory(NamedTuple):
    """A trajectory that took over: its points, start [s, the stamps' clock] and the point
    before it (time [s, same clock], state)."""

    trajectory: Trajectory
    start: float
    before: Tuple[float, JointState3]


class Takeover(NamedTuple):
    """A message that replaced a running trajectory, at its first update: ``age`` [s] since
    its start (stamp), ``step`` [rad/s]: the largest change of the commanded velocity from what
    the replaced trajectory would have commanded (0 for a message that repeats it there)."""

    age: float
    step: float


def reference(active: ActiveTrajectory, t: float) -> JointState3:
    """JTC's reference at time ``t`` [s, the stamps' clock]: from the point before to point 0,
    between points, or the last point held. At point 0's time exactly it is point 0, even when
    the point before is not earlier (a one-point hold started at once)."""
    trajectory, start = active.trajectory, active.start
    before_time, before_state = active.before
    relative = t - start
    if segment_at(trajectory, relative) == 0 and relative >= float(trajectory.times[0]):
        return trajectory.point(0)
    return sample(trajectory, (before_time - start, before_state), relative)


def hold_trajectory(position) -> Trajectory:
    """JTC's hold: one point at ``position`` [rad], zero velocity and acceleration, at time 0."""
    state = JointState3.at_rest(position)
    return Trajectory(np.zeros(1), state.position[None], state.velocity[None],
                      state.acceleration[None])


class TrajectoryController:
    """joint_trajectory_controller for one arm (module docstring), driven by the caller's
    clock: :meth:`receive` for each message, :meth:`update` once per control period.

    ``joint_names``: the controller's joints, in its order; ``p_gain`` [1/s] scalar or per
    joint; ``ff_velocity_scale`` scalar or per joint; ``period`` [s]: the controller manager's
    update period (the look-ahead of the command sample).
    """

    def __init__(self, joint_names: Sequence[str], p_gain, ff_velocity_scale=1.0,
                 period: float = 0.001):
        if not period > 0.0:
            raise ValueError("period must be > 0 s, got %r" % (period,))
        self.joint_names = tuple(joint_names)
        count = len(self.joint_names)
        self.p_gain = np.broadcast_to(np.asarray(p_gain, dtype=float), (count,)).copy()
        self.ff_velocity_scale = np.broadcast_to(np.asarray(ff_velocity_scale, dtype=float),
                                                 (count,)).copy()
        self.period = period
        self.active = False
        self.pending = None  # type: Optional[Tuple[Trajectory, float]]  # (points, stamp [s])
        self.current = None  # type: Optional[ActiveTrajectory]
        self.last_commanded = None  # type: Optional[JointState3]
        self.last_commanded_time = None  # type: Optional[float]  # s; None: the next update's
        self.desired = None  # type: Optional[JointState3]  # the last update's desired state
        self.accepted = 0
        self.rejected = 0
        self.superseded = 0  # accepted messages replaced before an update took them over
        self.takeover = None  # type: Optional[Takeover]  # the last one that replaced a trajectory

    def receive(self, names: Sequence[str], stamp_s: float, times: Sequence[float], positions,
                velocities, accelerations, now_s: float, efforts=None) -> str:
        """A trajectory message arrived at ``now_s`` [s] (arguments as :func:`validate`):
        '' if it is accepted (it takes over at the next update, replacing any pending one),
        :data:`DROPPED_INACTIVE` while inactive, else the reason it is refused."""
        reason = validate(self.joint_names, names, stamp_s, times, positions, velocities,
                          accelerations, now_s, efforts)
        if reason:
            self.rejected += 1
            return reason
        if not self.active:
            return DROPPED_INACTIVE
        trajectory = Trajectory(np.asarray(times, dtype=float),
                                reorder(self.joint_names, names, positions),
                                reorder(self.joint_names, names, velocities),
                                reorder(self.joint_names, names, accelerations))
        if self.pending is not None:
            self.superseded += 1
        self.pending = (trajectory, float(stamp_s))
        self.accepted += 1
        return ""

    def activate(self, now_s: float, measured_q, measured_dq=None) -> None:
        """The controller is activated at ``now_s`` [s] with the arm at ``measured_q`` [rad]
        (moving at ``measured_dq`` [rad/s], zeros if None): it holds that position."""
        q = np.array(measured_q, dtype=float)
        dq = np.zeros_like(q) if measured_dq is None else np.array(measured_dq, dtype=float)
        self.active = True
        self.current = None
        self.pending = (hold_trajectory(q), 0.0)
        self.last_commanded = JointState3(q, dq, np.zeros_like(q))
        self.last_commanded_time = None
        self.desired = None

    def deactivate(self) -> None:
        """The controller is deactivated: zero velocity commands, its trajectory forgotten."""
        self.active = False
        self.current = None
        self.pending = None

    def _take_over(self, now_s: float) -> None:
        trajectory, stamp = self.pending
        self.pending = None
        if self.last_commanded_time is None:
            self.last_commanded_time = now_s
        self.current = ActiveTrajectory(trajectory, stamp if stamp != 0.0 else now_s,
                                        (self.last_commanded_time, self.last_commanded))

    def update(self, now_s: float, measured_q, measured_dq) -> np.ndarray:
        """One controller update at ``now_s`` [s] with the measured joint positions [rad] and
        velocities [rad/s]: the joint velocity command [rad/s], shape (joints,)."""
        count = len(self.joint_names)
        if not self.active:
            return np.zeros(count)
        replaced = None  # type: Optional[JointState3]
        if self.pending is not None:
            if self.current is not None:
                replaced = reference(self.current, now_s + self.period)
            self._take_over(now_s)
        if self.current is None:
            return np.zeros(count)
        self.desired = reference(self.current, now_s)
        command_next = reference(self.current, now_s + self.period)
        if replaced is not None:
            self.takeover = Takeover(now_s - self.current.start, float(
                np.max(np.abs(command_next.velocity - replaced.velocity))))
        self.last_commanded, self.last_commanded_time = command_next, now_s
        error = self.desired.position - np.asarray(measured_q, dtype=float)
        return self.ff_velocity_scale * command_next.velocity + self.p_gain * error
