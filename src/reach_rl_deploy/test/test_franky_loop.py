"""reach_rl_deploy.interfaces.franky_loop's pure parts, without franky or a robot: the error
names a RobotState reports, and the tick and packet figures the loop keeps for diagnostics."""
import pytest

pytest.importorskip("rclpy", reason="reach_rl_deploy.interfaces needs rclpy (make setup)")

from reach_rl_deploy.interfaces.franky_loop import (SUCCESS_RATE_WINDOW,  # noqa: E402
                                                    FrankyLoopStats, robot_errors)


class Errors:
    """A stand-in for franky's Errors: one bool attribute per error, as libfranka names them."""

    def __init__(self, **flags):
        self.joint_position_limits_violation = False
        self.communication_constraints_violation = False
        self.__dict__.update(flags)

    def _private(self):  # not an error
        return True


class State:
    """A stand-in for franky's RobotState: its current errors and those of the last motion."""

    def __init__(self, current=None, last_motion=None):
        self.current_errors = current or Errors()
        self.last_motion_errors = last_motion or Errors()


def test_robot_errors_names_the_current_errors_else_the_last_motions():
    assert robot_errors(State()) == ""
    current = Errors(communication_constraints_violation=True, joint_position_limits_violation=True)
    last = Errors(cartesian_reflex=True)
    assert robot_errors(State(current, last)) == (
        "communication_constraints_violation, joint_position_limits_violation")
    assert robot_errors(State(last_motion=last)) == "cartesian_reflex"
    # Only attributes that are True name an error: a count or a truthy object does not.
    assert robot_errors(State(Errors(count=1, name="x", _hidden=True))) == ""


def test_stats_count_tick_periods_from_the_second_tick_and_reset_their_window():
    stats = FrankyLoopStats()
    assert stats.window_values()[0] == ("policy tick p50 [ms]", "-")
    for now in (10.0, 10.02, 10.04, 10.1):  # periods 20, 20 and 60 ms
        stats.tick(now)
    values = dict(stats.window_values())
    assert float(values["policy tick p50 [ms]"]) == pytest.approx(20.0, abs=0.1)
    assert float(values["policy tick max [ms]"]) == pytest.approx(60.0, abs=0.1)
    assert dict(stats.window_values())["policy tick max [ms]"] == "-"  # a new window
    assert stats.tick_period.count == 3  # the whole run's histogram keeps them
    assert stats.summary().startswith("policy ticks 4, ")


def test_stats_take_the_success_rate_only_once_a_motion_has_run_its_window():
    stats = FrankyLoopStats()
    stats.in_motion(0.0, 0.02, since_start=SUCCESS_RATE_WINDOW / 2)  # the robot's mean is 0 then
    assert stats.success_count == 0 and stats.min_success_rate == 1.0
    stats.in_motion(0.99, 0.02, since_start=SUCCESS_RATE_WINDOW)
    stats.in_motion(0.95, 0.02, since_start=SUCCESS_RATE_WINDOW + 0.02)
    assert stats.success_count == 2
    assert stats.min_success_rate == pytest.approx(0.95)
    # 1 % and 5 % of a 20 ms tick's 20 cycles lost: 0.2 + 1.0 cycles.
    assert stats.estimated_lost == pytest.approx(1.2)
    assert "control_command_success_rate mean 0.9700, min 0.950, lost cycles about 1" in (
        stats.summary())
