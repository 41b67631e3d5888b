"""Franka's 1 kHz loop through libfranka: RobotState -> DeployController -> joint velocities.

The ``libfranka`` deploy interface: no ROS on the control path. :class:`LibfrankaLoop` connects
to the arm's control unit (or franka-sim) with pylibfranka, Franka's official bindings, and
runs joint velocity motions with ``start_joint_velocity_control`` / ``readOnce`` /
``writeOnce``. Each cycle:

* the state is the robot's own (measured ``q``, ``dq``), fresh by construction;
* the filter continues from what the robot executed, ``RobotState.dq_d`` and ``ddq_d``, not
  from the last command sent: after a lost command the FCI extrapolated at constant
  acceleration, and a command continuing from there keeps acceleration and jerk continuous
  (libfranka's ``limitRate`` does the same). Where the state does not confirm the last
  command (it was late), a robot may still apply that command (franka-sim does), so the next
  one continues from it, within a jerk bound of the state's reference where that reference is
  what a robot that dropped the command reports (:mod:`reach_rl_deploy.command_continuity`);
  a command ready a whole robot cycle after its state arrived is not sent at all;
* the command comes from the same :class:`DeployController` and safety filter as the topic
  path, with the filter limits of this interface (:mod:`reach_rl_core.safety_filter`).

A motion runs while there is something to do (motion enabled, and a target or the move to
the ready pose); when the controller has ramped to zero for any other reason (disabled,
SIGINT, a refused or missing target, a non-finite policy output) the motion ends with
``motion_finished``. A reflex (``ControlException``) is reported through ``on_reflex`` and
is never recovered automatically: :meth:`LibfrankaLoop.request_recover` (the node's
``~/recover``) calls ``automatic_error_recovery``. A reflex already latched when the loop
connects is reported the same way.

pylibfranka is imported when a loop connects, so the rest of the package works without it.
"""
import collections
import threading
import time
from typing import Callable, NamedTuple, Optional

import numpy as np

from reach_rl_deploy import deploy_controller as dc
from reach_rl_deploy.command_continuity import (APPLIED, DROPPED, SentCommand, clamp_to_reference,
                                                continuation_base, reference_window)
from reach_rl_deploy.deploy_controller import DeployController, JointSample
from reach_rl_core.safety_filter import FilterState
from reach_rl_deploy.timing_histogram import TimingHistogram

IDLE_PERIOD = 0.004  # s between robot states read while no motion runs (250 Hz)
HISTORY = 12  # cycles of state and command logged when a reflex ends a motion
STATE_EVERY = 4  # cycles between robot states handed out during a motion (250 Hz)
# The robot's control_command_success_rate is a mean over its last 100 cycles, 0 at a motion's
# start: the run's minimum counts only from this many cycles into a motion.
SUCCESS_RATE_WINDOW = 100
CONNECT_TIMEOUT = 30.0  # s: a robot (or franka-sim started beside the node) may still be coming up
REST_ACCEL = 1e-3  # rad/s^2: a zero command with less acceleration than this ends a motion
# s: the robot's cycle. A command not ready within it of its state's arrival missed that state's
# cycle for certain: the robot drops it (a simulator may apply it late), so it is not sent.
ROBOT_CYCLE = 1e-3
ACTIVE = (dc.OK, dc.HOMING)  # controller states that keep a motion running


class LoopInputs(NamedTuple):
    """What the loop reads from the node every cycle."""

    target: Optional[np.ndarray]  # m, base frame; None: none
    enabled: bool
    stopping: bool  # SIGINT/SIGTERM: ramp to zero, finish the motion, return


class CycleStats:
    """Cycle timing and packet figures of the libfranka loop, for one window and the whole run."""

    def __init__(self):
        self.cycle_time = TimingHistogram()  # s between consecutive readOnce returns, whole run
        self.compute_time = TimingHistogram()  # s from readOnce's return to writeOnce's, whole run
        self.window_cycle_times = []  # s, this diagnostics window
        self.lost = 0  # cycles the robot extrapolated (no command from us), whole run
        self.withheld = 0  # commands not sent because their cycle had passed, whole run
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
                "row), late commands withheld %d, control_command_success_rate mean %.4f, "
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


class ControllerMotion:
    """The deploy node's motion source: :class:`DeployController` behind the safety filter.

    ``inputs()`` gives the target, enable and stop flags each cycle."""

    def __init__(self, controller: DeployController, inputs: Callable[[], LoopInputs]):
        self.controller = controller
        self.inputs = inputs
        limits = controller.limits
        self.window = reference_window(limits.joint_limits.jerk_max, limits.dt)  # rad/s
        self.sent = None  # type: Optional[SentCommand]  # the last command sent in this motion
        self.unconfirmed = 0  # states in a row that did not confirm the last command sent
        self._pending = None  # type: Optional[SentCommand]  # this cycle's, until it is sent
        self._sample = None  # type: Optional[JointSample]  # this cycle's state, for after_write

    def stopping(self) -> bool:
        return self.inputs().stopping

    def wants_motion(self, state) -> bool:
        """Motion enabled, and a target or the move to the ready pose."""
        inputs = self.inputs()
        return inputs.enabled and (inputs.target is not None
                                   or self.controller.needs_homing(np.array(state.q)))

    def start(self) -> None:
        self.controller.restart()
        self.sent, self.unconfirmed, self._pending = None, 0, None

    def command(self, state, now: float):
        """``(command [rad/s], finished)`` for this cycle's RobotState."""
        controller, inputs = self.controller, self.inputs()
        dq_d, ddq_d, dt = np.array(state.dq_d), np.array(state.ddq_d), controller.limits.dt
        message_id = state_message_id(state)
        base, reading = continuation_base(dq_d, ddq_d, message_id, self.sent, self.unconfirmed, dt)
        self.unconfirmed = 0 if reading == APPLIED else self.unconfirmed + 1
        controller.filter = base
        sample = self._sample = JointSample(np.array(state.q), np.array(state.dq), now)
        command = controller.tick(sample, inputs.target, inputs.enabled and not inputs.stopping, now)
        if reading == DROPPED:
            command = clamp_to_reference(command, dq_d, ddq_d, self.window, dt)
            controller.filter = FilterState(command, (command - base.command) / dt)
        self._pending = SentCommand(message_id, command, controller.filter.accel,
                                    FilterState(dq_d, ddq_d))
        done = (controller.status not in ACTIVE and not np.any(command)
                and np.max(np.abs(controller.filter.accel)) < REST_ACCEL)
        return command, done

    def withhold(self) -> None:
        """This cycle's command was not sent (ready too late for its cycle)."""
        self._pending = None

    def after_write(self, state, now: float) -> None:
        """Work that can wait until the command is out: the next policy step's inference (from
        the joint sample ``command`` made of this same ``state``)."""
        if self._pending is not None:
            self.sent, self._pending = self._pending, None
        self.controller.prepare(self._sample, self.inputs().target)

    def describe(self) -> str:
        return self.controller.status


class LibfrankaLoop:
    """Runs the motions of ``source`` in Franka's 1 kHz loop on the robot at ``robot_ip``.

    ``source`` (e.g. :class:`ControllerMotion`) has ``stopping()``, ``wants_motion(state)``,
    ``start()``, ``command(state, now) -> (command [rad/s], finished)``, ``after_write(state,
    now)`` (work that can wait until the command is out) and ``describe()``; with
    ``withhold_late`` also ``withhold()``, called instead of sending a command that was ready
    only ROBOT_CYCLE or more after its state arrived (the robot would drop it; franka-sim would
    apply it late, over the extrapolation it already published).
    ``on_cycle()`` is called after each command; ``on_state(state)`` gets a RobotState every
    ``state_every`` cycles during a motion and every IDLE_PERIOD otherwise (for joint
    states); ``on_reflex(text)`` once per reflex; ``log(text)`` reports what happens.
    """

    def __init__(self, robot_ip: str, source, on_state: Callable[[object], None],
                 on_cycle: Callable[[], None], on_reflex: Callable[[str], None],
                 log: Callable[[str], None], realtime: bool = False,
                 state_every: int = STATE_EVERY, withhold_late: bool = False):
        self.robot_ip = robot_ip
        self.source = source
        self.on_state = on_state
        self.on_cycle = on_cycle
        self.on_reflex = on_reflex
        self.log = log
        self.realtime = realtime
        self.state_every = state_every
        self.withhold_late = withhold_late
        self.stats = CycleStats()
        self.reflex = ""  # the latched reflex, '' when none
        self._recover = threading.Event()
        self._franka = None
        self._history = collections.deque(maxlen=HISTORY)  # the last cycles, for a reflex's log

    def request_recover(self) -> None:
        """Ask the loop to run ``automatic_error_recovery`` (from another thread)."""
        self._recover.set()

    def connect(self):
        """Connect to the robot; returns the pylibfranka Robot. A latched reflex is reported."""
        import pylibfranka

        self._franka = pylibfranka
        config = pylibfranka.RealtimeConfig.kEnforce if self.realtime else \
            pylibfranka.RealtimeConfig.kIgnore
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            try:
                robot = pylibfranka.Robot(self.robot_ip, config)
                break
            except pylibfranka.NetworkException as exc:
                if time.monotonic() > deadline or self.source.stopping():
                    raise
                self.log("waiting for the robot at %s (%s)" % (self.robot_ip, str(exc).strip()))
                time.sleep(1.0)
        state = robot.read_once()
        errors = robot_errors(state)
        if errors or state.robot_mode == pylibfranka.RobotMode.Reflex:
            self._latch("robot reports a reflex at connection: %s (mode %s)"
                        % (errors or "no error names", state.robot_mode))
        return robot

    def run(self, robot) -> None:
        """Motions and idle reads until ``source.stopping()``, the arm at rest."""
        while not self.source.stopping():
            if self._recover.is_set():
                self._recover_now(robot)
            state = robot.read_once()
            self.on_state(state)
            if not self.reflex and self.source.wants_motion(state):
                self._motion(robot)
            else:
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
                sent = not self.withhold_late or done or time.monotonic() - now < ROBOT_CYCLE
                if sent:
                    out = franka.JointVelocities(command.tolist())
                    out.motion_finished = bool(done)
                    control.writeOnce(out)
                else:
                    source.withhold()
                    self.stats.withheld += 1
                self._history.append((state_message_id(state), period.to_sec(), state.q,
                                      state.dq_d, state.ddq_d, command if sent else None))
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
                     "| command, None: withheld):\n" + "\n".join(
                         "%d | %.1f | %s | %s | %s | %s" % ((i, 1e3 * p) + tuple(
                             np.array2string(np.asarray(v), precision=6, max_line_width=250)
                             for v in values)) for i, p, *values in self._history))
            self._latch("%s; robot errors: %s" % (str(exc).strip(), robot_errors(state) or "none"))

    def _latch(self, text: str) -> None:
        self.reflex = text
        self.on_reflex(text)

    def _recover_now(self, robot) -> None:
        self._recover.clear()
        self.log("automatic error recovery")
        robot.automatic_error_recovery()
        self.reflex = ""
