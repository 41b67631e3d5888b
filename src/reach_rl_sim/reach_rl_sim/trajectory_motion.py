"""The motion franka_standin_node's 1 kHz libfranka loop runs: the joint_trajectory_controller
model (:mod:`reach_rl_sim.trajectory_controller`) updated once per robot cycle on the controller
manager's clock, as franka_hardware and the controller manager run it in C++.

:class:`TrajectoryMotion` is the loop's source (:class:`reach_rl_sim.pylibfranka_loop.PylibfrankaLoop`);
:class:`ControllerClock` is the time of each update.
"""
import threading
import time
from typing import Callable, List, Optional

import numpy as np

from reach_rl_core.franka_model import NUM_JOINTS
from reach_rl_sim.rate_limiter import RateLimiter
from reach_rl_sim.trajectory_controller import Takeover, TrajectoryController
from reach_rl_sim.trajectory_topic import receive


class TrajectoryMotion:
    """PylibfrankaLoop source: while active, every cycle sends the controller model's velocity
    command; when deactivated or stopping, zeros until the robot has stopped, then the motion
    ends. ``lock`` guards ``controller`` (whoever else reads it, e.g. for diagnostics);
    ``clock`` gives the system clock [s] (franka_standin_node's docstring: Clock)."""

    def __init__(self, controller: TrajectoryController, lock: threading.Lock,
                 active: threading.Event, stopping: threading.Event,
                 clock: Callable[[], float] = time.time,
                 inbox: Callable[[], List[object]] = lambda: [],
                 on_received: Callable[[str], None] = lambda reason: None,
                 on_takeover: Callable[[Takeover], None] = lambda takeover: None,
                 rate_limiter: Optional[RateLimiter] = None):
        """``inbox()``: the trajectory messages received since the last call, oldest first;
        ``on_received(reason)``: what the controller said of each ('' accepted);
        ``on_takeover``: each message that replaced a running trajectory;
        ``rate_limiter``: franka_hardware's rate limiter (:class:`RateLimiter`), applied to
        every command and told which went out; None: off."""
        self.controller, self.lock, self.clock = controller, lock, clock
        self.rate_limiter = rate_limiter
        self.active, self._stopping = active, stopping
        self.inbox, self.on_received, self.on_takeover = inbox, on_received, on_takeover
        self.controller_clock = ControllerClock()

    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wants_motion(self, state) -> bool:
        return self.active.is_set() and not self._stopping.is_set()

    def start(self) -> None:
        """A motion starts: the controller is activated at its first cycle, where the measured
        position is known."""
        with self.lock:
            self.controller.deactivate()
        self.controller_clock.reset()

    def command(self, state, now: float):
        """This cycle's (velocity command [rad/s], finished); ``now`` (the loop's monotonic
        time) is not used: the model runs on the controller clock (:class:`ControllerClock`)."""
        command, finished = self._controller_command(state)
        if self.rate_limiter is not None:
            command = self.rate_limiter(command, state)
        return command, finished and not np.any(command)

    def _controller_command(self, state):
        wall = self.controller_clock.tick(self.clock(), state.time.to_sec())
        q, dq = np.array(state.q), np.array(state.dq)
        with self.lock:
            if self._stopping.is_set() or not self.active.is_set():
                self.controller.deactivate()
                return np.zeros(NUM_JOINTS), not np.any(np.array(state.dq_d))
            if not self.controller.active:
                self.controller.activate(wall, q, dq)
            command = self.controller.update(wall, q, dq)
            takeover, self.controller.takeover = self.controller.takeover, None
        if takeover is not None:
            self.on_takeover(takeover)
        return command, False

    def after_write(self, state, now: float) -> None:
        """The messages received since the last cycle, oldest first, go to the controller once
        this cycle's command is out, at this update's time, as JTC's subscription callback runs
        between two updates: the newest accepted one takes over at the next update."""
        if self.rate_limiter is not None:
            self.rate_limiter.written()
        messages = self.inbox()
        with self.lock:
            for msg in messages:
                self.on_received(receive(self.controller, msg, self.controller_clock.now))

    def describe(self) -> str:
        return "deactivated" if not self.active.is_set() else "stopping"


class ControllerClock:
    """The controller manager's time [s, on the stamps' clock] at each update of a loop that
    sends the robot one command per robot cycle. ros2_control hands every update its period and
    JTC sums the periods (#1395); franka_hardware's loop runs on the robot's cycles, which are
    1 ms apart on the robot's clock, and after cycles the robot extrapolated (no command
    arrived: it keeps the acceleration constant), as far apart as the robot's clock says. So
    this clock advances by the robot's time between updates (libfranka's ``RobotState.time``),
    free of the scheduling jitter with which this Python loop reads the system clock (a step the
    robot would refuse, sampled into the trajectory), and consistent with the robot's
    extrapolation across lost cycles (a clock a period behind would step the command back). It
    is pulled toward the system clock by at most ``slew`` [s] per update, enough to follow a
    robot whose clock runs a little slow or fast against the system clock (franka-sim: 990-1000
    cycles a second), small enough that the jitter it lets in stays a jerk of
    ``a * slew / period^2``, 300 rad/s^3 at 3 rad/s^2 and 1 ms. Where it is more than
    ``catch_up_after`` [s] behind the system clock (this machine stalled robot and loop alike:
    the robot's clock stood still while the system clock ran on), by up to ``catch_up`` [s] per
    update: behind by tens of milliseconds, the trajectories sent meanwhile would take over
    before their stamps (a step; see the module docstring, Takeover)."""

    def __init__(self, slew: float = 1e-4, catch_up_after: float = 3e-3, catch_up: float = 5e-4):
        self.slew, self.catch_up_after, self.catch_up = slew, catch_up_after, catch_up
        self.now = None  # type: Optional[float]
        self.robot_time = 0.0  # s, the robot's time at the last update

    def tick(self, wall: float, robot_time: float) -> float:
        """The time [s] of an update that read the system clock at ``wall`` [s] and the robot's
        clock at ``robot_time`` [s]; the first after :meth:`reset` is ``wall``."""
        if self.now is None:
            self.now = wall
        else:
            self.now += robot_time - self.robot_time
            behind = wall - self.now
            slew = self.catch_up if behind > self.catch_up_after else self.slew
            self.now += float(np.clip(behind, -self.slew, slew))
        self.robot_time = robot_time
        return self.now

    def reset(self) -> None:
        """A new motion: the next tick starts from the system clock again."""
        self.now = None
