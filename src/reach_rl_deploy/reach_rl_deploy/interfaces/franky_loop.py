"""The libfranka interface: the policy at its own rate in Python, Franka's 1 kHz loop in C++.

franky-control (PyPI, MIT; libfranka 0.21.2 and Ruckig) runs Franka's 1 kHz control callback
on a C++ thread that never takes Python's interpreter lock. This module's :class:`FrankyLoop`
runs once per policy step (``controller.limits.dt``, 50 Hz) on a Python thread:

* reads the robot's latest state (measured ``q`` [rad], ``dq`` [rad/s]) from franky;
* runs :class:`~reach_rl_deploy.deploy_controller.DeployController` (watchdog, homing, policy,
  and the safety filter's goal clamp: velocity bounds, braking ahead of the position limits,
  self-collision);
* hands the command to franky as an asynchronous ``JointVelocityMotion`` that replaces the
  previous one. Ruckig reaches it within the acceleration and jerk limits given to franky
  (the filter's ``accel`` and ``jerk``), holds it for ``command_hold`` [s] and then brings the
  arm to rest on its own. So a Python side that stalls (a garbage-collector pause, a busy
  callback, a descheduled process) costs motion, never a reflex: the arm keeps its last
  command for ``command_hold``, stops smoothly, and moves on when commands come again. The
  braking curves of the filter allow for that hold (``FilterLimits.hold_time``).

Commands go out while there is motion to command: a non-zero command, or the first zero after
one (Ruckig ramps to it, and the motion ends ``command_hold`` later). A reflex
(``franky.ControlException``, from the motion or already latched at connection) is reported
through ``on_reflex`` and never recovered automatically: ``FrankyLoop.reflex.request_recover()``
(the node's ``~/recover``, through :class:`~reach_rl_deploy.interfaces.reflex_latch.ReflexLatch`) calls
``recover_from_errors``. The C++ control thread starts under
SCHED_FIFO ``rt_priority`` where permitted; the Python threads stay ordinary ones.

franky is imported when the loop connects, so the rest of the package works without it.
"""
import time
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

from reach_rl_deploy.ros_plumbing.realtime import threads_started_realtime
from reach_rl_deploy.deploy_controller import DeployController, JointSample
from reach_rl_deploy.interfaces import LoopInputs
from reach_rl_deploy.interfaces.robot_connection import RobotLink, connect_with_retry
from reach_rl_deploy.ros_plumbing.timing_histogram import TimingHistogram
from reach_rl_core.safety_filter import FilterState
from reach_rl_core.filter_limits import DEFAULT_CONTROL_RATE

CYCLES_PER_SECOND = DEFAULT_CONTROL_RATE  # Hz, Franka's control rate
# s: the robot's control_command_success_rate is a mean over its last 100 cycles, 0 when a
# motion starts; it is counted only from this long into a motion.
SUCCESS_RATE_WINDOW = 0.1


class RobotSettings(NamedTuple):
    """What the node sets on the robot at connection, instead of inheriting what the last
    program left (Franka's examples set the same)."""

    collision_torque: Sequence[float]  # Nm, 7 joints: contact/collision thresholds
    collision_force: Sequence[float]  # N (x, y, z), Nm (roll, pitch, yaw) at the end effector
    joint_impedance: Sequence[float]  # Nm/rad, 7 joints: the internal joint impedance controller


def robot_errors(state) -> str:
    """The names of the errors a RobotState reports (current, else of the last motion), or ''."""
    for errors in (state.current_errors, state.last_motion_errors):
        names = [name for name in dir(errors)
                 if not name.startswith("_") and getattr(errors, name) is True]
        if names:
            return ", ".join(names)
    return ""


class FrankyLoopStats:
    """Tick timing of the Python loop and the robot's packet figures, for diagnostics."""

    def __init__(self):
        self.tick_period = TimingHistogram()  # s between ticks, whole run
        self.window_periods = []  # s, this diagnostics window
        self.success_sum = 0.0  # control_command_success_rate, summed over ticks in motion
        self.success_count = 0
        self.min_success_rate = 1.0
        self.estimated_lost = 0.0  # 1 kHz cycles without a command, from the success rate
        self.motions = 0  # motions started (after a stall or a stop, a new one starts)
        self.commands = 0
        self.reflexes = 0
        self.motion_start = 0.0  # monotonic s, the current motion's first command
        self._last = None  # type: Optional[float]

    def tick(self, now: float) -> None:
        if self._last is not None:
            self.tick_period.add(now - self._last)
            self.window_periods.append(now - self._last)
        self._last = now

    def in_motion(self, success_rate: float, period: float, since_start: float) -> None:
        """A tick ``period`` [s] long during which a motion ran, ``since_start`` [s] after it
        started, with the robot's ``control_command_success_rate`` (a mean over its last 100
        cycles)."""
        if since_start < SUCCESS_RATE_WINDOW:
            return
        self.success_sum += success_rate
        self.success_count += 1
        self.min_success_rate = min(self.min_success_rate, success_rate)
        self.estimated_lost += (1.0 - success_rate) * period * CYCLES_PER_SECOND

    def window_values(self):
        """Diagnostics key/value pairs since the last call: tick period p50/p99/max [ms]."""
        periods, self.window_periods = 1e3 * np.asarray(self.window_periods), []
        values = [("policy tick p%d [ms]" % q, "%.1f" % np.percentile(periods, q)
                   if len(periods) else "-") for q in (50, 99)]
        return values + [("policy tick max [ms]", "%.1f" % periods.max() if len(periods) else "-"),
                         ("motions started", str(self.motions))]

    def summary(self) -> str:
        mean = self.success_sum / self.success_count if self.success_count else float("nan")
        return ("policy ticks %d, tick period %s, commands %d, motions %d, reflexes %d, "
                "control_command_success_rate mean %.4f, min %.3f, lost cycles about %.0f"
                % (self.tick_period.count + 1 if self._last else 0, self.tick_period.summary(),
                   self.commands, self.motions, self.reflexes, mean, self.min_success_rate,
                   self.estimated_lost))


class FrankyLoop(RobotLink):
    """Runs ``controller`` at its rate over franky's 1 kHz loop on the robot at ``robot_ip``.

    ``inputs()`` gives the target, enable and stop flags each tick; ``on_state(state)`` gets
    every tick's franky RobotState (joint states to publish); ``on_reflex(text)`` once per
    reflex; ``log(text)`` reports what happens; ``after_tick(now)``, if given, runs after
    every tick (monotonic s).
    """

    def __init__(self, robot_ip: str, controller: DeployController,
                 inputs: Callable[[], LoopInputs], on_state: Callable[[object], None],
                 on_reflex: Callable[[str], None], log: Callable[[str], None],
                 settings: RobotSettings, command_hold: float, realtime: bool = False,
                 rt_priority: int = 0, after_tick: Optional[Callable[[float], None]] = None):
        super().__init__(robot_ip, realtime, on_reflex, log)
        self.controller, self.inputs, self.on_state = controller, inputs, on_state
        self.after_tick = after_tick
        self.settings = settings
        self.command_hold_ms = max(1, int(round(1e3 * command_hold)))
        self.rt_priority = rt_priority
        self.stats = FrankyLoopStats()
        self._franky = None
        self._sent = np.zeros(len(controller.filter.command))  # last command handed to franky
        self._was_in_control = False

    def connect(self):
        """Connect and configure the robot; returns the franky Robot. A latched reflex is
        reported."""
        import franky

        self._franky = franky
        config = franky.RealtimeConfig.Enforce if self.realtime else franky.RealtimeConfig.Ignore
        robot = connect_with_retry(lambda: franky.Robot(self.robot_ip, realtime_config=config),
                                   franky.NetworkException, self.robot_ip,
                                   lambda: self.inputs().stopping, self.log)
        if robot.has_errors:
            self.reflex.latch("robot reports a reflex at connection: %s"
                        % (robot_errors(robot.state) or "no error names"))
        else:
            self.configure(robot)
        return robot

    def configure(self, robot) -> None:
        """Collision thresholds, joint impedance and the trajectory limits franky's Ruckig
        meets every cycle: the filter's acceleration and jerk bounds, Franka's velocity limits
        scaled by ``velocity_fraction`` (the filter clamps position-dependent ones)."""
        limits = self.controller.limits
        s = self.settings
        robot.set_collision_behavior(list(s.collision_torque), list(s.collision_force))
        robot.set_joint_impedance(list(s.joint_impedance))
        robot.relative_dynamics_factor = 1.0
        franky_max = np.asarray(robot.joint_velocity_limit.max, dtype=float)
        if limits.velocity_cap is not None and np.any(franky_max < limits.velocity_cap):
            raise RuntimeError("franky plans joint velocities up to %s rad/s only, below the "
                               "filter's cap %s (filter_limits.FRANKY_VELOCITY_MAX): this franky "
                               "would fail the policy's fast motions"
                               % (franky_max.tolist(), limits.velocity_cap.tolist()))
        velocity = np.minimum(limits.velocity_fraction * np.asarray(limits.joint_limits.vel_max),
                              franky_max)
        robot.joint_velocity_limit.set(velocity.tolist())
        robot.joint_acceleration_limit.set(
            np.minimum(limits.accel, robot.joint_acceleration_limit.max).tolist())
        robot.joint_jerk_limit.set(np.minimum(limits.jerk, robot.joint_jerk_limit.max).tolist())
        self.log("robot configured: collision torque %s Nm, force %s N/Nm, joint impedance %s "
                 "Nm/rad; trajectory limits %s rad/s, %s rad/s^2, %s rad/s^3; commands held %d ms"
                 % (list(s.collision_torque), list(s.collision_force), list(s.joint_impedance),
                    np.round(velocity, 3).tolist(), np.round(limits.accel, 3).tolist(),
                    np.round(limits.jerk, 1).tolist(), self.command_hold_ms))

    def run(self, robot) -> None:
        """Policy ticks until ``inputs().stopping`` and the arm at rest."""
        period = self.controller.limits.dt
        start = time.monotonic()
        deadline = start
        while True:
            now = time.monotonic()
            self.stats.tick(now)
            inputs = self.inputs()
            if self.reflex.take_recover_request():
                self._recover_now(robot)
            self._tick(robot, inputs, now, period)
            if inputs.stopping and not np.any(self._sent) and not robot.is_in_control:
                return
            if self.after_tick is not None:
                self.after_tick(now)
            deadline = max(deadline + period, time.monotonic() - period)
            time.sleep(max(0.0, deadline - time.monotonic()))

    def _tick(self, robot, inputs: LoopInputs, now: float, period: float) -> None:
        franky, controller = self._franky, self.controller
        state = robot.state
        in_control = self._poll(robot)
        if in_control:
            self.stats.in_motion(state.control_command_success_rate, period,
                                 now - self.stats.motion_start)
        elif self._was_in_control or not np.any(self._sent):
            if self._was_in_control and not self.reflex.text:
                self.log("motion finished (%s): the arm is at rest" % controller.status)
            # The last motion ended (its hold ran out, or a reflex): the arm is at rest, and
            # the policy's previous command is what the arm does, zero.
            controller.filter = FilterState.at_rest()
            self._sent = np.zeros_like(self._sent)
        self._was_in_control = in_control
        sample = JointSample(np.array(state.q), np.array(state.dq), now)
        enabled = inputs.enabled and not inputs.stopping and not self.reflex.text
        command = controller.tick(sample, inputs.target, enabled, now)
        self.on_state(state)
        if self.reflex.text or not (np.any(command) or np.any(self._sent)):
            return
        motion = franky.JointVelocityMotion(command, duration=franky.Duration(self.command_hold_ms))
        try:
            if in_control or self.rt_priority <= 0:
                robot.move(motion, asynchronous=True)
            else:
                self._start_motion(robot, motion)
        except franky.ControlException as exc:
            self._reflex(robot, exc)
            return
        self.stats.commands += 1
        if not in_control:
            self.stats.motions += 1
            self.stats.motion_start = now
        self._sent = command

    def _start_motion(self, robot, motion) -> None:
        """The first command of a motion: franky starts its control thread, under SCHED_FIFO."""
        try:
            with threads_started_realtime(self.rt_priority):
                robot.move(motion, asynchronous=True)
        except PermissionError as exc:
            self.log("no SCHED_FIFO for the 1 kHz control thread (%s): run with CAP_SYS_NICE "
                     "or rt_priority:=0" % exc)
            self.rt_priority = 0
            robot.move(motion, asynchronous=True)

    def _poll(self, robot) -> bool:
        """Whether a motion is running; a motion that ended in a reflex latches it."""
        try:
            robot.poll_motion()  # raises what ended the last motion (its return value: done)
        except self._franky.ControlException as exc:
            self._reflex(robot, exc)
            return False
        return bool(robot.is_in_control)

    def _reflex(self, robot, exc) -> None:
        self.stats.reflexes += 1
        self._sent = np.zeros_like(self._sent)
        self.reflex.latch("%s; robot errors: %s"
                          % (str(exc).strip(), robot_errors(robot.state) or "none"))

    def _recover_now(self, robot) -> None:
        self.log("automatic error recovery")
        robot.recover_from_errors()
        if not robot.has_errors:
            self.configure(robot)
            self.reflex.cleared()
            self.controller.rehome()
