"""Where the next libfranka joint velocity command continues from, after a command was late.

Franka's controller judges each motion-generator command against the reference it executed
the cycle before: the step ``(dq_c - dq_{k-1}) / dt`` against the acceleration limit, and its
change against the acceleration of the step before, ``ddq_{k-1}``, against the jerk limit. That
reference comes back in every RobotState as ``dq_d`` and ``ddq_d``. A command that misses its
1 ms cycle is dropped, and the robot extrapolates at constant acceleration instead (libfranka,
"Packet handling"); ``dq_d``/``ddq_d`` then report the extrapolation.

So on the robot, continuing the filter from the state's ``dq_d``/``ddq_d`` (as libfranka's
``limitRate`` does) is exact. A robot that *applies* a late command instead of dropping it
(franka-sim does: it rewinds its extrapolation to the late command when it arrives) judges the
next command against that late command, while the state we answer still reported the
extrapolation it has since thrown away. Continuing from the state there makes the next command a
step from what is judged: a run of answers one cycle late doubles the acceleration error every
cycle, and a late answer after a stall can leave ``dq_d`` several cycles of extrapolation away.

:func:`continuation_base` reads each state against the last command sent (:class:`SentCommand`):

* ``APPLIED``: ``dq_d`` is that command (extrapolated over any cycles the loop skipped): the
  state's reference is the base, as libfranka's ``limitRate`` has it;
* ``DROPPED``: ``dq_d`` is the reference that command answered, extrapolated: the command was
  late. A robot dropped it; one that applies late commands will judge the next one against it.
  The base is the command, continued at its acceleration, and :func:`clamp_to_reference` keeps
  the result within ``window`` of ``dq_d + ddq_d dt``, what a robot that dropped it judges;
* ``UNEXPLAINED``: neither, which a robot that drops late commands never reports (franka-sim
  does, after rewinding to a late command): the base is the command sent, continued.

After MAX_UNCONFIRMED states in a row that are not ``APPLIED`` the state's reference is the base
again. Units: rad/s, rad/s^2, s; joint order of the arm.
"""
from typing import NamedTuple, Optional, Tuple

import numpy as np

from reach_rl_core.safety_filter import FilterState

# rad/s: |dq_d - prediction| below this is a match. dq_d is a float32 on the wire
# (rounding <= 1.2e-7 rad/s below 2.62 rad/s); a lost command differing by less than this
# changed the acceleration by < 1e-3 rad/s^2 and is harmless to either reading.
CONFIRM_TOLERANCE = 1e-6
# States in a row not APPLIED after which the state alone is the base: the robot stops a
# motion after 20 lost commands in a row (communication_constraints_violation), so no command
# of ours that old can still be applied.
MAX_UNCONFIRMED = 20
# Fraction of Franka's jerk limit by which a command may depart from the robot's own next
# extrapolated value (the step judged if the last command was dropped).
REFERENCE_JERK_FRACTION = 0.5

APPLIED, DROPPED, UNEXPLAINED = "applied", "dropped", "unexplained"


class SentCommand(NamedTuple):
    """A command written to the robot: the ``message_id`` of the RobotState it answered [ms,
    libfranka's ``RobotState.time``], the ``command`` [rad/s], its ``accel`` [rad/s^2] (the step
    from the base it continued from, over dt) and that state's ``reference`` (``dq_d`` [rad/s],
    ``ddq_d`` [rad/s^2])."""

    message_id: int
    command: np.ndarray
    accel: np.ndarray
    reference: FilterState


def continued(sent: SentCommand, message_id: int, dt: float) -> FilterState:
    """``sent`` as the reference of a robot that applied it, in the state ``message_id``:
    extrapolated at constant acceleration over the ``message_id - sent.message_id - 1`` cycles
    (of ``dt`` s) between them that got no command."""
    skipped = max(message_id - sent.message_id - 1, 0)
    accel = np.asarray(sent.accel, dtype=float)
    return FilterState(sent.command + skipped * accel * dt, accel)


def dropped_reference(sent: SentCommand, message_id: int, dt: float) -> np.ndarray:
    """``dq_d`` [rad/s] in the state ``message_id`` of a robot that dropped ``sent``: the
    reference ``sent`` answered, extrapolated over every cycle since (``dt`` s each)."""
    cycles = message_id - sent.message_id
    return sent.reference.command + cycles * sent.reference.accel * dt


def _matches(dq_d: np.ndarray, predicted: np.ndarray) -> bool:
    return bool(np.max(np.abs(dq_d - predicted)) <= CONFIRM_TOLERANCE)


def continuation_base(dq_d, ddq_d, message_id: int, sent: Optional[SentCommand], unconfirmed: int,
                      dt: float) -> Tuple[FilterState, str]:
    """``(base, reading)``: the reference the next command continues from, and how this state
    reads against ``sent``, the last command written (None: none yet in this motion):
    ``APPLIED``, ``DROPPED`` or ``UNEXPLAINED`` (module docstring).

    ``dq_d`` [rad/s] and ``ddq_d`` [rad/s^2] are the state's, ``message_id`` its id [ms],
    ``unconfirmed`` how many states in a row before this one were not ``APPLIED``, ``dt`` the
    cycle [s]. The base is the state's reference when ``APPLIED`` (or nothing was sent yet, or
    MAX_UNCONFIRMED states in a row were not), else ``sent`` continued (:func:`continued`).
    """
    dq_d = np.asarray(dq_d, dtype=float)
    robot = FilterState(dq_d, np.asarray(ddq_d, dtype=float))
    if sent is None or message_id <= sent.message_id:
        return robot, APPLIED
    own = continued(sent, message_id, dt)
    if _matches(dq_d, own.command):
        return robot, APPLIED
    reading = DROPPED if _matches(dq_d, dropped_reference(sent, message_id, dt)) else UNEXPLAINED
    return (robot if unconfirmed + 1 >= MAX_UNCONFIRMED else own), reading


def reference_window(jerk_max, dt: float, fraction: float = REFERENCE_JERK_FRACTION):
    """Largest departure [rad/s] of a command from the robot's next extrapolated value, per
    joint: ``fraction`` of Franka's jerk limit ``jerk_max`` [rad/s^3] over one cycle ``dt`` [s]
    (a departure ``w`` steps the acceleration by ``w / dt``, a jerk of ``w / dt^2``)."""
    return fraction * np.asarray(jerk_max, dtype=float) * dt * dt


def clamp_to_reference(command, dq_d, ddq_d, window, dt: float) -> np.ndarray:
    """``command`` [rad/s] within ``window`` [rad/s] of ``dq_d + ddq_d * dt``, the value the robot
    executes next when it gets no command (``dq_d`` [rad/s], ``ddq_d`` [rad/s^2], ``dt`` [s])."""
    extrapolated = np.asarray(dq_d, dtype=float) + np.asarray(ddq_d, dtype=float) * dt
    return np.clip(np.asarray(command, dtype=float), extrapolated - window, extrapolated + window)
