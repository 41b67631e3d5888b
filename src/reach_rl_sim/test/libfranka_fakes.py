"""Stand-ins for the libfranka values the stand-in's loop reads, for tests without a robot."""
from typing import NamedTuple


class RobotTime(NamedTuple):
    """libfranka's Duration [s]."""

    seconds: float

    def to_sec(self) -> float:
        return self.seconds


class RobotState(NamedTuple):
    """What TrajectoryMotion and the rate limiter read of libfranka's RobotState: measured
    ``q`` [rad], ``dq`` [rad/s], the robot's echo ``dq_d`` [rad/s] and ``ddq_d`` [rad/s^2];
    ``time``: the robot's clock."""

    q: tuple
    dq: tuple
    dq_d: tuple
    time: RobotTime = RobotTime(0.0)
    ddq_d: tuple = (0.0,) * 7

    def at(self, seconds: float) -> "RobotState":
        return self._replace(time=RobotTime(seconds))
