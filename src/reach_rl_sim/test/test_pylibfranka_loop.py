"""The stand-in's pylibfranka loop (reach_rl_sim.pylibfranka_loop) against a scripted robot: an
answer the loop would send late is withheld, as a real-time controller manager is never late."""
import time

import numpy as np
import pylibfranka
from libfranka_fakes import RobotTime

from reach_rl_sim.pylibfranka_loop import LATE_ANSWER, LibfrankaLoop


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
    loop = LibfrankaLoop("127.0.0.1", Source(), lambda state: None, lambda: None,
                         lambda text: None, logs.append, state_every=1)
    loop._franka = pylibfranka
    loop._motion(Robot(control))
    assert control.answered == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert loop.stats.withheld == 1 and "motion finished (done)" in logs[-1]
