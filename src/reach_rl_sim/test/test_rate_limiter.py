"""franka_hardware's rate limiter (reach_rl_sim.rate_limiter) against a robot that differences
each command over 1 ms and extrapolates lost cycles at constant acceleration, as the FCI does."""
import threading

import numpy as np
import pytest
from libfranka_fakes import RobotState, RobotTime

from reach_rl_core.franka_model import FR3, READY_POSE, joint_names
from reach_rl_sim.rate_limiter import LIMIT_SHARE, ROBOT_PERIOD, RateLimiter, limit_rate
from reach_rl_sim.trajectory_controller import TrajectoryController
from reach_rl_sim.trajectory_motion import TrajectoryMotion

T = ROBOT_PERIOD
ACC, JERK = np.array(FR3.acc_max), np.array(FR3.jerk_max)


class Robot:
    """dq_d and ddq_d as the robot echoes them; ``lose(n)`` extrapolates n cycles."""

    def __init__(self, velocity, acceleration):
        self.dq_d, self.ddq_d = np.array(velocity, float), np.array(acceleration, float)
        self.worst_acc, self.worst_jerk = 0.0, 0.0  # shares of Franka's limits
        self.cycle = 0

    @property
    def time(self) -> RobotTime:
        return RobotTime(self.cycle * T)

    def answer(self, limiter: RateLimiter, command) -> None:
        """``command`` through ``limiter``, sent this cycle."""
        limited = limiter(command, self)
        limiter.written()
        self.apply(limited)

    def apply(self, command, since=None):
        """``command`` differenced over one cycle against the last, or over ``since`` = (velocity,
        acceleration, span [s]) against an earlier one."""
        velocity, acceleration, span = since or (self.dq_d, self.ddq_d, T)
        acc = (command - velocity) / span
        jerk = (acc - acceleration) / span
        self.worst_acc = max(self.worst_acc, float(np.max(np.abs(acc) / ACC)))
        self.worst_jerk = max(self.worst_jerk, float(np.max(np.abs(jerk) / JERK)))
        self.dq_d, self.ddq_d = command, acc
        self.cycle += 1

    def lose(self, cycles):
        for _ in range(cycles):
            self.dq_d = self.dq_d + self.ddq_d * T
            self.cycle += 1


class RewindingRobot(Robot):
    """franka-sim's handling of a late answer (``send(..., late=True)``): the next state echoes
    the extrapolation that stood in for it; the answer, once it arrives, replaces the
    extrapolations since the last answer received and is differenced over that interval, in the
    history the next command is differenced against (``history``). ``echo_worst_jerk``: the
    commands' jerk against the state each answered (what the FCI, dropping late answers, checks)."""

    def __init__(self, velocity, acceleration):
        super().__init__(velocity, acceleration)
        self.history = Robot(velocity, acceleration)
        self.received = (self.history.dq_d, self.history.ddq_d, -1)  # velocity, acc., cycle
        self.echo_worst_jerk = 0.0

    def send(self, command, late: bool) -> None:
        self.apply(command)  # against the echo
        self.echo_worst_jerk = max(self.echo_worst_jerk, self.worst_jerk)
        before, h = (self.history.dq_d, self.history.ddq_d), self.history
        velocity, acceleration, cycle = self.received
        h.apply(command, since=(velocity, acceleration, (h.cycle - cycle) * T) if late else None)
        self.received = (h.dq_d, h.ddq_d, h.cycle - 1)
        if late:
            self.dq_d, self.ddq_d = before[0] + before[1] * T, before[1]

    def lose(self, cycles):
        """Extrapolated from the answers kept: a late one arrived during the first lost cycle."""
        self.history.lose(cycles)
        self.dq_d, self.ddq_d = self.history.dq_d, self.history.ddq_d
        self.cycle += cycles


def jerk_phase(t, jerk=500.0, acc=3.0):
    """Velocity [rad/s] at ``t`` [s] of a ramp from rest at constant jerk [rad/s^3] up to
    acceleration ``acc`` [rad/s^2], then at ``acc``; every joint."""
    ramp = acc / jerk
    v = 0.5 * jerk * t * t if t < ramp else 0.5 * acc * ramp + acc * (t - ramp)
    return np.full(7, v)


def test_any_command_from_any_state_arrives_within_limits():
    rng = np.random.default_rng(0)
    for _ in range(200):
        robot = Robot(rng.uniform(-2, 2, 7), rng.uniform(-5, 5, 7))
        limiter, target = RateLimiter(ACC, JERK), rng.uniform(-2, 2, 7)
        for _ in range(2000):
            robot.answer(limiter, target)
        assert robot.worst_acc <= LIMIT_SHARE + 1e-9 and robot.worst_jerk <= LIMIT_SHARE + 1e-9
        np.testing.assert_allclose(robot.dq_d, target, atol=1e-12)


def test_a_tiny_velocity_goes_to_exact_zero():
    """A motion ends only on an exact zero echo (1e-24 rad/s is what a hold leaves behind)."""
    tiny = np.array([-2.3e-29, 1.4e-28, -3.0e-24, 5.5e-25, 0.0, 0.0, 3.0e-24])
    np.testing.assert_array_equal(limit_rate(np.zeros(7), tiny, np.zeros(7), ACC, JERK),
                                  np.zeros(7))


def test_a_conforming_command_is_unchanged():
    velocity, acceleration = np.full(7, 0.3), np.full(7, 2.0)
    command = velocity + (acceleration + 0.4) * T  # 400 rad/s^3 of jerk, 2.4 rad/s^2
    np.testing.assert_array_equal(limit_rate(command, velocity, acceleration, ACC, JERK), command)


@pytest.mark.parametrize("lost", [3, 8, 20])
def test_resuming_after_lost_cycles_in_a_jerk_phase_stays_within_limits(lost):
    robot = Robot(jerk_phase(0.002), np.full(7, 500.0 * 0.002))
    limiter = RateLimiter(ACC, JERK)
    unlimited = Robot(robot.dq_d, robot.ddq_d)
    unlimited.lose(lost)
    unlimited.apply(jerk_phase(0.002 + (lost + 1) * T))
    assert unlimited.worst_jerk > 1.0 or lost < 8  # without the limiter: a reflex
    robot.lose(lost)
    for k in range(lost + 1, lost + 200):
        robot.answer(limiter, jerk_phase(0.002 + k * T))
    assert robot.worst_acc <= LIMIT_SHARE + 1e-9 and robot.worst_jerk <= LIMIT_SHARE + 1e-9
    assert limiter.limited > 0 or lost < 8
    np.testing.assert_allclose(robot.dq_d, jerk_phase(0.002 + (lost + 199) * T), atol=1e-9)


def follow_with_late_answers(late_share: float, tell_written: bool, seed: int = 0):
    """A 3 rad/s^2 sine followed for 0.6 s from the start of a jerk phase, a share of the
    answers late and 1 in 50 cycles starting a gap of 1-5 lost cycles (a Python loop on a loaded
    machine), through a limiter told (or not) which answers went out."""
    rng = np.random.default_rng(seed)
    robot = RewindingRobot(jerk_phase(0.002), np.full(7, 500.0 * 0.002))
    limiter = RateLimiter(ACC, JERK)
    for k in range(600):
        if rng.random() < 0.02:
            robot.lose(int(rng.integers(1, 6)))
        command = limiter(np.full(7, 0.5 + 0.3 * np.sin(10.0 * robot.cycle * T)), robot)
        if tell_written:
            limiter.written()
        robot.send(command, late=rng.random() < late_share)
    return robot


@pytest.mark.parametrize("late_share", [0.05, 0.3, 0.8])
def test_late_answers_that_the_robot_keeps_stay_within_limits(late_share):
    """Against the history franka-sim keeps (late answers replace its extrapolation) and
    against each state's echo: both within the limiter's share."""
    for seed in range(3):
        robot = follow_with_late_answers(late_share, tell_written=True, seed=seed)
        assert robot.history.worst_jerk <= LIMIT_SHARE + 1e-9
        assert robot.history.worst_acc <= LIMIT_SHARE + 1e-9
        assert robot.echo_worst_jerk <= LIMIT_SHARE + 1e-9


def test_limited_against_the_echo_alone_late_answers_break_the_limits():
    blind = follow_with_late_answers(0.3, tell_written=False)
    assert blind.history.worst_jerk > 1.0  # a reflex on franka-sim


def test_zeros_from_full_speed_arrive_within_limits():
    """...and overshoot zero by less than one cycle's jerk step (J T^2) on the way."""
    robot = Robot(np.full(7, 1.0), np.zeros(7))
    limiter = RateLimiter(ACC, JERK)
    speeds = []
    for _ in range(1000):
        robot.answer(limiter, np.zeros(7))
        speeds.append(robot.dq_d.copy())
    assert robot.worst_acc <= LIMIT_SHARE + 1e-9 and robot.worst_jerk <= LIMIT_SHARE + 1e-9
    speeds = np.array(speeds)
    assert np.all(speeds >= -LIMIT_SHARE * JERK * T * T), "overshot past zero"
    np.testing.assert_array_equal(speeds[-1], np.zeros(7))


def test_in_the_stand_in_deactivation_brakes_within_limits_then_finishes():
    """The stand-in's motion with the limiter (its default): every command, the zeros of a
    deactivation included, within Franka's acceleration and jerk limits of the robot's echo."""
    limiter = RateLimiter(ACC, JERK)
    active, stopping = threading.Event(), threading.Event()
    motion = TrajectoryMotion(TrajectoryController(joint_names("fr3"), 0.0), threading.Lock(),
                              active, stopping, clock=lambda: 2000.0, rate_limiter=limiter)
    dq_d, ddq_d = np.full(7, 0.5), np.zeros(7)  # moving at 0.5 rad/s when deactivated
    for k in range(1000):
        state = RobotState(tuple(READY_POSE), tuple(dq_d), tuple(dq_d), RobotTime(T * k),
                           tuple(ddq_d))
        command, done = motion.command(state, 0.0)
        if done:
            break
        acceleration = (command - dq_d) / T
        assert np.all(np.abs(acceleration) <= ACC)
        assert np.all(np.abs(acceleration - ddq_d) <= T * JERK)
        dq_d, ddq_d = command, acceleration
    assert done and 50 < k < 200 and limiter.limited > 50  # braked over tens of cycles
