"""The stand-in's pylibfranka loop (reach_rl_sim.pylibfranka_loop) against a scripted robot: an
answer the loop would send late is withheld, as a real-time controller manager is never late."""
import time

import numpy as np
import pylibfranka
from libfranka_fakes import RobotTime

from reach_rl_sim.pylibfranka_loop import LATE_ANSWER, PylibfrankaLoop


class State:
    """The RobotState fields the loop reads; ``time`` counts cycles of 1 ms."""

    def __init__(self, cycle):
        self.time = RobotTime(0.001 * cycle)
        self.q = self.dq_d = self.ddq_d = [0.0] * 7
        self.control_command_success_rate = 1.0


class Control:
    """Active control: ``readOnce`` gives the next cycle's state, ``writeOnce`` records which
    cycle each command answered."""

    def __init__(self):
        self.cycle, self.answered = 0, []

    def readOnce(self):  # noqa: N802 (pylibfranka's name)
        self.cycle += 1
        return State(self.cycle), RobotTime(0.001)

    def writeOnce(self, command):  # noqa: N802
        self.answered.append(self.cycle)


class Robot:
    def __init__(self, control):
        self.control = control

    def start_joint_velocity_control(self, mode):
        return self.control


class Source:
    """Moves for 10 cycles, stalling 3 ms while computing the answer to cycle 4; then done."""

    def __init__(self):
        self.cycles = 0

    def start(self):
        pass

    def command(self, state, now):
        self.cycles += 1
        if self.cycles == 4:
            time.sleep(3 * LATE_ANSWER)
        return np.zeros(7), self.cycles >= 10

    def after_write(self, state, now):
        pass

    def describe(self):
        return "done"


def test_a_late_answer_is_withheld_and_the_next_state_answered():
    control, logs = Control(), []
    loop = PylibfrankaLoop("127.0.0.1", Source(), lambda state: None, lambda: None,
                           lambda text: None, logs.append, state_every=1)
    loop._franka = pylibfranka
    loop._motion(Robot(control))
    assert control.answered == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert loop.stats.withheld == 1 and "motion finished (done)" in logs[-1]


class IdleRobot(Robot):
    """Also reads states between motions (``read_once``), and times when the motion starts."""

    def __init__(self, control):
        super().__init__(control)
        self.reads, self.motion_started = 0, None

    def read_once(self):
        self.reads += 1
        return State(0)

    def start_joint_velocity_control(self, mode):
        self.motion_started = time.monotonic()
        return self.control


class OneMotion(Source):
    """Wants one motion from the first read on; stops the loop when it is done."""

    def wants_motion(self, state):
        return self.cycles == 0

    def stopping(self):
        return self.cycles >= 10


def test_the_first_motion_waits_for_the_settle_time_after_connecting():
    robot = IdleRobot(Control())
    loop = PylibfrankaLoop("127.0.0.1", OneMotion(), lambda state: None, lambda: None,
                           lambda text: None, lambda text: None, settle=0.05)
    loop._franka = pylibfranka
    start = time.monotonic()
    loop.run(robot)
    assert robot.motion_started - start >= 0.05
    assert robot.reads > 1  # states were read (and handed out) while it settled
    assert robot.control.answered[-1] == 10
