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

    def apply(self, command):
        acc = (command - self.dq_d) / T
        jerk = (acc - self.ddq_d) / T
        self.worst_acc = max(self.worst_acc, float(np.max(np.abs(acc) / ACC)))
        self.worst_jerk = max(self.worst_jerk, float(np.max(np.abs(jerk) / JERK)))
        self.dq_d, self.ddq_d = command, acc

    def lose(self, cycles):
        for _ in range(cycles):
            self.dq_d = self.dq_d + self.ddq_d * T


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
            robot.apply(limiter(target, robot))
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
        robot.apply(limiter(jerk_phase(0.002 + k * T), robot))
    assert robot.worst_acc <= LIMIT_SHARE + 1e-9 and robot.worst_jerk <= LIMIT_SHARE + 1e-9
    assert limiter.limited > 0
    np.testing.assert_allclose(robot.dq_d, jerk_phase(0.002 + (lost + 199) * T), atol=1e-9)


def test_zeros_from_full_speed_arrive_within_limits():
    """...and overshoot zero by less than one cycle's jerk step (J T^2) on the way."""
    robot = Robot(np.full(7, 1.0), np.zeros(7))
    limiter = RateLimiter(ACC, JERK)
    speeds = []
    for _ in range(1000):
        robot.apply(limiter(np.zeros(7), robot))
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
