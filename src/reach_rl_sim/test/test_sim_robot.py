"""Simulated arm: actuator lag, position integration, reflexes and reset."""
import numpy as np
import pytest

from reach_rl_core.franka_model import FR3, PANDA, READY_POSE
from reach_rl_core.filter_limits import FilterLimits
from reach_rl_core.safety_filter import FilterState, filter_step
from reach_rl_sim.sim_robot import SimRobot

READY = np.array(READY_POSE)


def test_actuator_lag_and_integration():
    robot = SimRobot(FR3, READY, tau=0.005)
    flimits = FilterLimits.from_joint_limits(FR3)
    state = FilterState.at_rest()
    goal = np.array([0.5, -0.3, 0.2, 0.4, -0.6, 0.3, 1.0])
    commanded = np.zeros(7)
    for _ in range(1000):  # 1 s: ramp up (0.5 s at most), cruise
        state, _ = filter_step(flimits, state, goal, robot.q)
        assert robot.step(state.command) is None
        commanded += state.command * robot.dt
    np.testing.assert_allclose(robot.dq, goal, atol=1e-9)
    # The lag trails the commanded position by velocity * tau.
    np.testing.assert_allclose(robot.q - READY, commanded - goal * 0.005, atol=1e-9)
    for _ in range(1000):  # stop; the lag's trail closes once the arm stands still
        state, _ = filter_step(flimits, state, np.zeros(7), robot.q)
        robot.step(state.command)
        commanded += state.command * robot.dt
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
    assert robot.trigger_reflex("command has 6 values, expected 7")
    assert not robot.trigger_reflex("something else")
    assert robot.error == "command has 6 values, expected 7"


def test_bad_initial_positions_rejected():
    with pytest.raises(ValueError, match="7 finite"):
        SimRobot(FR3, [0.0] * 6)
    with pytest.raises(ValueError, match="outside"):
        SimRobot(FR3, [0.0] * 7)  # joint 4 and 6 of the FR3 exclude 0
