"""Connecting to a Franka control unit (or franka-sim) that may still be coming up, and what a
1 kHz loop keeps of the robot it connects to."""
import time
from typing import Callable, Type

from reach_rl_deploy.interfaces.reflex_latch import ReflexLatch

CONNECT_TIMEOUT = 30.0  # s: a robot (or franka-sim started beside the node) may still be coming up


def connect_with_retry(open_robot: Callable[[], object], network_error: Type[Exception],
                       robot_ip: str, stopping: Callable[[], bool], log: Callable[[str], None],
                       timeout: float = CONNECT_TIMEOUT):
    """``open_robot()``'s robot, retried once a second while it raises ``network_error`` (the
    library's NetworkException), until ``timeout`` [s] has passed or ``stopping()``; then the
    last error is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_robot()
        except network_error as exc:
            if time.monotonic() > deadline or stopping():
                raise
            log("waiting for the robot at %s (%s)" % (robot_ip, str(exc).strip()))
            time.sleep(1.0)


class RobotLink:
    """What a loop that drives a robot keeps of it (franky's loop, the stand-in's pylibfranka
    loop): the control unit's address, whether libfranka enforces a real-time kernel
    (``realtime``), the log and the reflex latch (``reflex.text``: the latched reflex, '' when
    none; ``on_reflex(text)`` once per reflex)."""

    def __init__(self, robot_ip: str, realtime: bool, on_reflex: Callable[[str], None],
                 log: Callable[[str], None]):
        self.robot_ip = robot_ip
        self.realtime = realtime
        self.log = log
        self.reflex = ReflexLatch(on_reflex)
