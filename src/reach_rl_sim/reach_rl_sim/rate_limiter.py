"""franka_hardware's joint-velocity rate limiter: each 1 kHz command, limited against what the
robot last commanded itself.

The robot differences every command against its own last commanded velocity and acceleration
(``RobotState.dq_d``, ``ddq_d`` [rad/s, rad/s^2]), and after cycles in which no command arrived
it has extrapolated at constant acceleration. A controller that resumes after such a gap
samples its trajectory where the trajectory is now, not where the extrapolation went: in a
jerk phase the two differ by about ``J (n T)^2 / 2`` after ``n`` lost cycles of ``T``, which
the robot reads as an acceleration step (``joint_motion_generator_acceleration_discontinuity``).

franka_ros2's ``franka_hardware::Robot::writeOnceJointVelocities`` has a rate limiter for this
(libfranka's ``franka::limitRate`` against ``dq_d`` and ``ddq_d``), compiled off by default;
its comment says to activate it on robot errors. :func:`limit_rate` is that step, written
from libfranka's documented behaviour: the command's acceleration and jerk, as the robot
computes them, kept within bounds. Velocity bounds are not applied here: the trajectories
already respect them (:mod:`reach_rl_core.safety_filter`).

Which history the robot differences against is not always the one it echoed. An answer that
reaches the robot after its next state went out is dropped by the FCI (that state's echo, the
extrapolation, is then the history), but franka-sim applies it: it throws away the
extrapolations since the last answer it received and records this one, differenced over that
interval (``MotionLimitChecker.rewind_extrapolation``). A Python loop on a loaded machine
answers that late every few hundred cycles; limited against the echo alone, the next command
then stepped against the answer the robot kept (5756-7917 rad/s^3 on franka-sim, reflexes under
load). :class:`RateLimiter` therefore keeps each command within the limits against every
history franka-sim may hold (where the previous cycle was answered, that answer; after a gap,
the extrapolation, or the last answer sent, over the gap) and, where that leaves room, against
the echo as well. A command that :func:`limit_rate` leaves unchanged and that is within
``LIMIT_SHARE`` of all of them goes out as it is; where it must be limited, the limiter's own
steps take ``STEP_SHARE`` of the jerk limit, so that those histories, which then differ by
about one such step, leave room for a command within ``LIMIT_SHARE`` of every one
(:func:`window`).
"""
from typing import List, Optional, Tuple

import numpy as np

from reach_rl_core.filter_limits import DEFAULT_CONTROL_RATE

ROBOT_PERIOD = 1.0 / DEFAULT_CONTROL_RATE  # s, Franka's control cycle
LIMIT_SHARE = 0.95  # of Franka's acceleration and jerk limits: room for rounding on the robot
STEP_SHARE = 0.5  # of Franka's jerk limit, for the limiter's own steps (module docstring)


def limit_rate(command: np.ndarray, last_velocity: np.ndarray, last_acceleration: np.ndarray,
               acc_max: np.ndarray, jerk_max: np.ndarray,
               period: float = ROBOT_PERIOD) -> np.ndarray:
    """``command`` [rad/s] moved toward the robot's last commanded velocity ``last_velocity``
    [rad/s] just enough that its acceleration [rad/s^2] stays within ``acc_max`` and changes
    from ``last_acceleration`` [rad/s^2] by at most ``jerk_max * period`` (the robot's
    backward differences over ``period`` [s]). On the way to a command further off, the
    acceleration is also kept to what the jerk bound can bring back to zero by the time the
    velocity arrives, so that it arrives overshooting by less than ``jerk_max * period^2``. A command that already conforms
    is returned unchanged."""
    gap = command - last_velocity
    wanted = gap / period
    # a with a^2 / (2 J) + a T / 2 <= |gap|: what is left of the gap after this cycle still
    # holds the steps that bring a back to zero, J T at a time
    half_step = 0.5 * jerk_max * period
    room = 2.0 * jerk_max * np.abs(gap)
    arrival = room / (np.sqrt(half_step ** 2 + room) + half_step)  # no cancellation at tiny gaps
    acceleration = np.clip(wanted, -arrival, arrival)
    step = jerk_max * period
    acceleration = np.clip(acceleration, last_acceleration - step, last_acceleration + step)
    acceleration = np.clip(acceleration, -acc_max, acc_max)
    # bit for bit the command where nothing was limited: zeros stay zeros (a motion's end)
    return np.where(acceleration == wanted, command, last_velocity + acceleration * period)


def window(last_velocity: np.ndarray, last_acceleration: np.ndarray, acc_max: np.ndarray,
           jerk_max: np.ndarray, period: float = ROBOT_PERIOD):
    """``(low, high)`` [rad/s]: the commands whose acceleration against ``last_velocity`` [rad/s]
    stays within ``acc_max`` [rad/s^2] and changes from ``last_acceleration`` [rad/s^2] by at
    most ``jerk_max * period``."""
    step = jerk_max * period
    low = np.maximum(last_acceleration - step, -acc_max)
    high = np.minimum(last_acceleration + step, acc_max)
    return last_velocity + low * period, last_velocity + high * period


class RateLimiter:
    """:func:`limit_rate` toward each command, within ``LIMIT_SHARE`` of an arm's limits against
    every history the robot may difference it against (module docstring). Counts the cycles it
    changed a command (after lost or late cycles; never while commands arrive every cycle)."""

    def __init__(self, acc_max, jerk_max):
        """``acc_max`` [rad/s^2], ``jerk_max`` [rad/s^3]: Franka's limits, per joint."""
        self.acc_max = LIMIT_SHARE * np.asarray(acc_max, dtype=float)
        self.jerk_max = LIMIT_SHARE * np.asarray(jerk_max, dtype=float)
        self.step_jerk = STEP_SHARE * np.asarray(jerk_max, dtype=float)
        self.limited = 0  # cycles in which the command was changed
        # (cycle, velocity [rad/s], accelerations [rad/s^2] the robot may record for it) of the
        # last command computed, and of the last one written to the robot
        self._answer = None  # type: Optional[Tuple[int, np.ndarray, List[np.ndarray]]]
        self._sent = None  # type: Optional[Tuple[int, np.ndarray, List[np.ndarray]]]

    def __call__(self, command: np.ndarray, state) -> np.ndarray:
        """``command`` [rad/s] for the cycle of ``state`` (a libfranka RobotState: ``dq_d``,
        ``ddq_d``, ``time``), limited against the histories the robot may hold."""
        cycle = int(round(state.time.to_sec() / ROBOT_PERIOD))
        echo_v, echo_a = np.asarray(state.dq_d, dtype=float), np.asarray(state.ddq_d, dtype=float)
        sent = self._sent
        follows = sent is not None and sent[0] == cycle - 1
        histories = [(sent[1], a) for a in sent[2]] if follows else []
        # the echo last, where it leaves room: the history where a late answer was dropped
        # (the FCI's; franka-sim's after a gap)
        histories.append((echo_v, echo_a))
        low, high = self._window(histories)
        velocity, acceleration = histories[0]
        unchanged = limit_rate(command, velocity, acceleration, self.acc_max, self.jerk_max)
        if np.array_equal(unchanged, command) and np.all((low <= command) & (command <= high)):
            limited = command
        else:
            limited = limit_rate(command, velocity, acceleration, self.acc_max, self.step_jerk)
            limited = np.where(low <= high, np.clip(limited, low, high), limited)
            self.limited += 1
        # what the robot records: after the answer to the previous cycle, the step from it (late
        # or not: a late one replaced the extrapolation); after a gap, the step from the
        # extrapolation (on time) or from the last answer over the gap (late: rewound)
        if follows:
            accelerations = [(limited - sent[1]) / ROBOT_PERIOD]
        else:
            accelerations = [(limited - echo_v) / ROBOT_PERIOD]
            if sent is not None:
                accelerations.append((limited - sent[1]) / ((cycle - sent[0]) * ROBOT_PERIOD))
        self._answer = (cycle, limited, accelerations)
        return limited

    def _window(self, histories):
        """``(low, high)`` [rad/s]: the commands within the limits against the first
        (velocity, acceleration) of ``histories`` and, per joint, each later one that leaves
        room."""
        low, high = window(*histories[0], self.acc_max, self.jerk_max)
        for velocity, acceleration in histories[1:]:
            other_low, other_high = window(velocity, acceleration, self.acc_max, self.jerk_max)
            both = np.maximum(low, other_low), np.minimum(high, other_high)
            room = both[0] <= both[1]
            low, high = np.where(room, both[0], low), np.where(room, both[1], high)
        return low, high

    def written(self) -> None:
        """The last command computed went to the robot (not withheld)."""
        self._sent = self._answer
