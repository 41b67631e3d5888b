"""Simulated arm: actuator lag, position integration, reflexes and reset."""
import numpy as np
import pytest

from reach_rl_core.command_trajectory import evaluate, velocity_change
from reach_rl_core.franka_model import FR3, PANDA, READY_POSE
from reach_rl_core.trajectory_spline import JointState3
from reach_rl_sim.sim_robot import SimRobot

READY = np.array(READY_POSE)


def ramp(start, goal, cycles, dt=1e-3):
    """Joint velocity commands [rad/s], one per cycle: the jerk-limited change from ``start`` to
    ``goal`` (4 rad/s^2, 500 rad/s^3: inside Franka's limits), then ``goal`` held."""
    at_start = JointState3(np.zeros(7), np.asarray(start, dtype=float), np.zeros(7))
    pieces = velocity_change(at_start.velocity, at_start.acceleration, goal, np.full(7, 4.0),
                             np.full(7, 500.0))
    return [evaluate(at_start, pieces, (k + 1) * dt).velocity for k in range(cycles)]


def test_actuator_lag_and_integration():
    robot = SimRobot(FR3, READY, tau=0.005)
    goal = np.array([0.5, -0.3, 0.2, 0.4, -0.6, 0.3, 1.0])
    commanded = np.zeros(7)
    for command in ramp(np.zeros(7), goal, 1000):  # 1 s: ramp up (0.26 s at most), cruise
        assert robot.step(command) is None
        commanded += command * robot.dt
    np.testing.assert_allclose(robot.dq, goal, atol=1e-9)
    # The lag trails the commanded position by velocity * tau.
    np.testing.assert_allclose(robot.q - READY, commanded - goal * 0.005, atol=1e-9)
    for command in ramp(goal, np.zeros(7), 1000):  # stop; the lag's trail closes at rest
        assert robot.step(command) is None
        commanded += command * robot.dt
    np.testing.assert_allclose(robot.dq, 0.0, atol=1e-12)
    np.testing.assert_allclose(robot.q - READY, commanded, atol=1e-9)


def test_no_lag_integrates_commands_directly():
    robot = SimRobot(PANDA, READY, tau=0.0)
    for k in range(1, 5):
        robot.step(np.full(7, 0.001 * k))  # 1 rad/s^2, no jerk after the first cycle
    np.testing.assert_allclose(robot.dq, 0.004)
    np.testing.assert_allclose(robot.q - READY, 1e-6 * (1 + 2 + 3 + 4))


def test_step_command_starts_reflex_that_holds_until_reset():
    robot = SimRobot(FR3, READY)
    robot.step(np.zeros(7))
    command = np.zeros(7)
    command[3] = 1.0
    error = robot.step(command)
    assert error is not None and robot.in_reflex
    assert "fr3_joint4" in error and "joint_jerk_limit_violation" in error
    assert "joint_acceleration_limit_violation" in error
    q = robot.q.copy()
    for _ in range(100):  # commands are ignored, the arm stands still
        assert robot.step(command) is None
    np.testing.assert_array_equal(robot.q, q)
    np.testing.assert_array_equal(robot.dq, 0.0)
    assert robot.error == error
    assert robot.reset() == error and not robot.in_reflex
    assert robot.reset() is None
    assert robot.step(np.zeros(7)) is None
    # Held commands restart from zero: the old 1 rad/s would reflex again.
    assert robot.step(command) is not None


def test_position_limit_reflex_and_reset_puts_joint_back():
    q0 = READY.copy()
    q0[0] = FR3.pos_max[0] - 1e-4
    robot = SimRobot(FR3, q0, tau=0.0)
    # Unfiltered 0.1 rad/s toward the limit: the FR3 velocity bound there is ~0 -> reflex.
    command = np.zeros(7)
    command[0] = 0.004
    errors = [robot.step(command * k / 4) for k in range(1, 5)]
    error = next(e for e in errors if e)
    assert "joint_velocity_limit_violation on fr3_joint1" in error
    robot.reset()
    assert robot.q[0] <= FR3.pos_max[0]


def test_trigger_reflex_keeps_first_error():
    robot = SimRobot(PANDA, READY)
    assert robot.trigger_reflex("joint_jerk_limit_violation on panda_joint1")
    assert not robot.trigger_reflex("something else")
    assert robot.error == "joint_jerk_limit_violation on panda_joint1"


def test_bad_initial_positions_rejected():
    with pytest.raises(ValueError, match="7 finite"):
        SimRobot(FR3, [0.0] * 6)
    with pytest.raises(ValueError, match="outside"):
        SimRobot(FR3, [0.0] * 7)  # joint 4 and 6 of the FR3 exclude 0
