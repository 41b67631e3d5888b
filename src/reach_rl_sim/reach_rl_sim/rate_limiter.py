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
"""
import numpy as np

from reach_rl_core.filter_limits import DEFAULT_CONTROL_RATE

ROBOT_PERIOD = 1.0 / DEFAULT_CONTROL_RATE  # s, Franka's control cycle
LIMIT_SHARE = 0.95  # of Franka's acceleration and jerk limits: room for rounding on the robot


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


class RateLimiter:
    """:func:`limit_rate` at ``LIMIT_SHARE`` of an arm's limits, counting the cycles it changed
    a command (after lost cycles; never while commands arrive every cycle)."""

    def __init__(self, acc_max, jerk_max):
        """``acc_max`` [rad/s^2], ``jerk_max`` [rad/s^3]: Franka's limits, per joint."""
        self.acc_max = LIMIT_SHARE * np.asarray(acc_max, dtype=float)
        self.jerk_max = LIMIT_SHARE * np.asarray(jerk_max, dtype=float)
        self.limited = 0  # cycles in which the command was changed

    def __call__(self, command: np.ndarray, state) -> np.ndarray:
        """``command`` [rad/s] limited against ``state``'s (a libfranka RobotState) ``dq_d``
        and ``ddq_d``."""
        limited = limit_rate(command, np.asarray(state.dq_d), np.asarray(state.ddq_d),
                             self.acc_max, self.jerk_max)
        if not np.allclose(limited, command, rtol=0.0, atol=1e-12):
            self.limited += 1
        return limited
