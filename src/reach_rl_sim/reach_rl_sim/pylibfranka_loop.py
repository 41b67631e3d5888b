"""Franka's 1 kHz loop through pylibfranka, in Python: the franka_ros2 stand-in's data path.

:class:`PylibfrankaLoop` connects to the arm's control unit (or franka-sim) with pylibfranka,
Franka's official bindings, and runs joint velocity motions with
``start_joint_velocity_control`` / ``readOnce`` / ``writeOnce``, asking its ``source`` for each
cycle's command. franka_standin_node uses it to stand in for franka_hardware, which runs the
same loop in C++ inside the controller manager. Here it runs in Python, on a machine that is
not real-time: a cycle it misses is the robot's to judge, as it would be with a late
franka_hardware, and an answer that would leave more than ``LATE_ANSWER`` after its state
arrived is not sent at all (the robot extrapolates that cycle, as for a lost packet), since a
real-time controller manager never sends one that late. (The deploy node's own libfranka interface does not run its loop in Python:
:mod:`reach_rl_deploy.interfaces.franky_loop`.)

A motion runs while the source wants one; a reflex (``ControlException``) is reported through
``on_reflex`` and is never recovered automatically: ``PylibfrankaLoop.reflex.request_recover()``
calls ``automatic_error_recovery``. A reflex already latched when the loop connects is
reported the same way. pylibfranka is imported when a loop connects.
"""
import collections
import time
from typing import Callable, Optional

import numpy as np

from reach_rl_deploy.interfaces.robot_connection import RobotLink, connect_with_retry
from reach_rl_deploy.ros_plumbing.timing_histogram import TimingHistogram

IDLE_PERIOD = 0.004  # s between robot states read while no motion runs (250 Hz)
HISTORY = 12  # cycles of state and command logged when a reflex ends a motion
STATE_EVERY = 4  # cycles between robot states handed out during a motion (250 Hz)
# s from reading a state to answering it, beyond which the answer is withheld: it would reach
# the robot in a later cycle, where the robot has already extrapolated (a real-time controller
# manager is never that late; this Python loop is, when the machine stalls it mid-cycle)
LATE_ANSWER = 0.0008
# The robot's control_command_success_rate is a mean over its last 100 cycles, 0 at a motion's
# start: the run's minimum counts only from this many cycles into a motion.
SUCCESS_RATE_WINDOW = 100
class CycleStats:
    """Cycle timing and packet figures of the libfranka loop, for one window and the whole run."""

    def __init__(self):
        self.cycle_time = TimingHistogram()  # s between consecutive readOnce returns, whole run
        self.compute_time = TimingHistogram()  # s from readOnce's return to writeOnce's, whole run
        self.window_cycle_times = []  # s, this diagnostics window
        self.lost = 0  # cycles the robot extrapolated (no command from us), whole run
        self.withheld = 0  # answers not sent, late (LATE_ANSWER), whole run
        self.window_lost = 0
        self.max_lost_in_a_row = 0
        self.success_rates = []  # RobotState.control_command_success_rate, this window
        self.success_sum = 0.0  # whole run
        self.success_count = 0
        self.cycles = 0
        self.min_success_rate = 1.0  # from SUCCESS_RATE_WINDOW cycles into each motion
        self._last = None  # type: Optional[float]
        self._motion_cycles = 0

    def add(self, now: float, written: float, period_s: float, success_rate: float) -> None:
        """One cycle read at monotonic ``now`` [s] and answered at ``written`` [s], ``period_s``
        since the robot's previous state that this loop read [s] (``readOnce``'s Duration), and
        the robot's success rate."""
        self.compute_time.add(written - now)
        if self._last is not None:
            self.cycle_time.add(now - self._last)
            self.window_cycle_times.append(now - self._last)
        self._last = now
        lost = max(int(round(period_s * 1000.0)) - 1, 0)
        self.lost += lost
        self.window_lost += lost
        self.max_lost_in_a_row = max(self.max_lost_in_a_row, lost)
        self.cycles += 1
        self._motion_cycles += 1
        if self._motion_cycles > SUCCESS_RATE_WINDOW:
            self.success_rates.append(success_rate)
            self.success_sum += success_rate
            self.success_count += 1
            self.min_success_rate = min(self.min_success_rate, success_rate)

    def motion_ended(self) -> None:
        self._last = None
        self._motion_cycles = 0

    def window_values(self):
        """Diagnostics key/value pairs of the window since the last call: cycle time p50 and
        p99 [us], lost cycles, mean control_command_success_rate; starts the next window."""
        times, lost, rates = self.window_cycle_times, self.window_lost, self.success_rates
        self.window_cycle_times, self.window_lost, self.success_rates = [], 0, []
        us = 1e6 * np.asarray(times)
        values = [("cycle time p%d [us]" % q, "%.0f" % np.percentile(us, q) if len(us) else "-")
                  for q in (50, 99)]
        return values + [("lost cycles", str(lost)),
                         ("control_command_success_rate",
                          "%.4f" % float(np.mean(rates)) if rates else "-")]

    def summary(self) -> str:
        mean = self.success_sum / self.success_count if self.success_count else float("nan")
        return ("cycles %d, cycle time %s, compute time %s, lost cycles %d (at most %d in a "
                "row), late answers withheld %d, control_command_success_rate mean %.4f, "
                "min %.3f"
                % (self.cycles, self.cycle_time.summary(), self.compute_time.summary(), self.lost,
                   self.max_lost_in_a_row, self.withheld, mean, self.min_success_rate))


def state_message_id(state) -> int:
    """The RobotState's message id: libfranka's ``RobotState.time``, one count per 1 ms cycle."""
    return int(round(state.time.to_sec() * 1000.0))


def robot_errors(state) -> str:
    """The names of the errors a RobotState reports (current, else of the last motion), or ''."""
    for errors in (state.current_errors, state.last_motion_errors):
        text = str(errors).strip()
        if text and text not in ("[]", "{}", "None"):
            return text
    return ""


class PylibfrankaLoop(RobotLink):
    """Runs the motions of ``source`` in Franka's 1 kHz loop on the robot at ``robot_ip``.

    ``source`` (franka_standin_node's trajectory controller) has ``stopping()``,
    ``wants_motion(state)``, ``start()``, ``command(state, now) -> (command [rad/s],
    finished)``, ``after_write(state, now)`` (work that can wait until the command is out)
    and ``describe()``.
    ``on_cycle()`` is called after each command, and once per read while no motion runs;
    ``on_state(state)`` gets a RobotState every
    ``state_every`` cycles during a motion and every IDLE_PERIOD otherwise (for joint
    states); ``on_reflex(text)`` once per reflex; ``log(text)`` reports what happens.
    ``settle`` [s]: idle reads after connecting before the first motion may start.
    """

    def __init__(self, robot_ip: str, source, on_state: Callable[[object], None],
                 on_cycle: Callable[[], None], on_reflex: Callable[[str], None],
                 log: Callable[[str], None], realtime: bool = False,
                 state_every: int = STATE_EVERY, settle: float = 0.0):
        super().__init__(robot_ip, realtime, on_reflex, log)
        self.source, self.on_state, self.on_cycle = source, on_state, on_cycle
        self.state_every = state_every
        self.settle = settle
        self.stats = CycleStats()
        self._franka = None
        self._history = collections.deque(maxlen=HISTORY)  # the last cycles, for a reflex's log

    def connect(self):
        """Connect to the robot; returns the pylibfranka Robot. A latched reflex is reported."""
        import pylibfranka

        self._franka = pylibfranka
        config = pylibfranka.RealtimeConfig.kEnforce if self.realtime else \
            pylibfranka.RealtimeConfig.kIgnore
        robot = connect_with_retry(lambda: pylibfranka.Robot(self.robot_ip, config),
                                   pylibfranka.NetworkException, self.robot_ip,
                                   self.source.stopping, self.log)
        state = robot.read_once()
        errors = robot_errors(state)
        if errors or state.robot_mode == pylibfranka.RobotMode.Reflex:
            self.reflex.latch("robot reports a reflex at connection: %s (mode %s)"
                        % (errors or "no error names", state.robot_mode))
        return robot

    def run(self, robot) -> None:
        """Motions and idle reads until ``source.stopping()``, the arm at rest."""
        first_motion = time.monotonic() + self.settle
        while not self.source.stopping():
            if self.reflex.take_recover_request():
                self._recover_now(robot)
            state = robot.read_once()
            self.on_state(state)
            if (not self.reflex.text and time.monotonic() >= first_motion
                    and self.source.wants_motion(state)):
                self._motion(robot)
            else:
                self.on_cycle()
                time.sleep(IDLE_PERIOD)

    def _motion(self, robot) -> None:
        franka, source = self._franka, self.source
        try:
            control = robot.start_joint_velocity_control(franka.ControllerMode.JointImpedance)
            source.start()
            cycle = 0
            while True:
                state, period = control.readOnce()
                now = time.monotonic()
                command, done = source.command(state, now)
                if not done and time.monotonic() - now > LATE_ANSWER:
                    self.stats.withheld += 1
                    continue
                out = franka.JointVelocities(command.tolist())
                out.motion_finished = bool(done)
                control.writeOnce(out)
                self._history.append((state_message_id(state), period.to_sec(), state.q,
                                      state.dq_d, state.ddq_d, command))
                self.stats.add(now, time.monotonic(), period.to_sec(),
                               state.control_command_success_rate)
                source.after_write(state, now)
                self.on_cycle()
                if cycle % self.state_every == 0:
                    self.on_state(state)
                cycle += 1
                if done:
                    self.stats.motion_ended()
                    self.log("motion finished (%s)" % source.describe())
                    return
        except franka.ControlException as exc:
            self.stats.motion_ended()
            state = robot.read_once()
            self.log("the last cycles before the reflex (message id | period ms | q | dq_d | ddq_d "
                     "| command):\n" + "\n".join(
                         "%d | %.1f | %s | %s | %s | %s" % ((i, 1e3 * p) + tuple(
                             np.array2string(np.asarray(v), precision=6, max_line_width=250)
                             for v in values)) for i, p, *values in self._history))
            self.reflex.latch("%s; robot errors: %s"
                              % (str(exc).strip(), robot_errors(state) or "none"))

    def _recover_now(self, robot) -> None:
        self.log("automatic error recovery")
        robot.automatic_error_recovery()
        self.reflex.cleared()
