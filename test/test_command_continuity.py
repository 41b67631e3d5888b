"""reach_rl_deploy.command_continuity: where a libfranka command continues from after a late one.

Two readings of a late command are checked: the robot's (dropped: the next command is judged
against the extrapolation the state reports) and franka-sim's (applied late: the next command is
judged against the late command). The scenarios are the two that ended bench runs with
``joint_motion_generator_acceleration_discontinuity`` (a run of answers one cycle late, and a
late answer after a stall), reduced to one joint.
"""
import numpy as np
import pytest

from reach_rl_core.safety_filter import FilterState, track_step
from reach_rl_deploy.command_continuity import (APPLIED, CONFIRM_TOLERANCE, DROPPED,
                                                MAX_UNCONFIRMED, UNEXPLAINED, SentCommand,
                                                clamp_to_reference, continuation_base, continued,
                                                dropped_reference, reference_window)

DT = 1e-3
JERK_MAX = 5000.0  # rad/s^3, Franka's joint jerk limit
ACCEL, JERK = 2.0, 500.0  # the libfranka interface's filter bounds (FR3)
WINDOW = reference_window(JERK_MAX, DT)


def sent_command(message_id, command, accel, dq_d, ddq_d):
    return SentCommand(message_id, np.array([command]), np.array([accel]),
                       FilterState(np.array([dq_d]), np.array([ddq_d])))


def test_continued_and_dropped_extrapolate_at_constant_acceleration():
    sent = SentCommand(10, np.array([0.5, -0.2]), np.array([2.0, -1.0]),
                       FilterState(np.array([0.498, -0.199]), np.array([1.5, -1.0])))
    np.testing.assert_allclose(continued(sent, 11, DT).command, [0.5, -0.2])  # the next state
    later = continued(sent, 14, DT)  # three cycles without a command in between
    np.testing.assert_allclose(later.command, [0.5 + 3 * 2e-3, -0.2 - 3 * 1e-3])
    np.testing.assert_allclose(later.accel, [2.0, -1.0])
    # Dropped: the reference the command answered, extrapolated over all four cycles.
    np.testing.assert_allclose(dropped_reference(sent, 14, DT), [0.498 + 4 * 1.5e-3, -0.203])


def test_a_state_that_confirms_the_command_is_the_base():
    sent = sent_command(10, 0.3, 1.0, 0.299, 0.5)
    dq_d = np.float32(0.3 + 2 * 1e-3)  # float32 on the wire, two cycles extrapolated
    base, reading = continuation_base([dq_d], [1.0], 13, sent, 0, DT)
    assert reading == APPLIED
    np.testing.assert_array_equal(base.command, [float(dq_d)])
    base, reading = continuation_base([0.1], [0.0], 5, None, 0, DT)  # nothing sent yet
    assert reading == APPLIED and base.command[0] == 0.1


@pytest.mark.parametrize("dq_d, expected", [(0.299 + 0.5e-3, DROPPED), (0.25, UNEXPLAINED)])
def test_a_state_that_does_not_confirm_continues_the_sent_command(dq_d, expected):
    sent = sent_command(10, 0.3, 1.0, 0.299, 0.5)
    base, reading = continuation_base([dq_d], [0.5], 11, sent, 0, DT)
    assert reading == expected
    np.testing.assert_allclose(base.command, [0.3])
    np.testing.assert_allclose(base.accel, [1.0])
    # After MAX_UNCONFIRMED states in a row no command of ours can still be applied.
    base, reading = continuation_base([dq_d], [0.5], 11, sent, MAX_UNCONFIRMED - 1, DT)
    assert reading == expected and base.command[0] == dq_d
    assert 10 * CONFIRM_TOLERANCE < abs(dq_d - 0.3)


def test_clamp_keeps_a_command_within_the_window_of_the_robots_extrapolation():
    assert WINDOW == pytest.approx(0.5 * JERK_MAX * DT * DT)
    np.testing.assert_allclose(clamp_to_reference([1.0, 0.101, -1.0], [0.1, 0.1, 0.1], [2.0, 0, 0],
                                                  WINDOW, DT),
                               [0.102 + WINDOW, 0.101, 0.1 - WINDOW])


def next_command(rule, state, sent, unconfirmed, goal):
    """One loop cycle: ``(command, accel, confirmed)`` for ``state`` = (message id, dq_d, ddq_d)."""
    message_id, dq_d, ddq_d = state
    if rule == "state":
        base, reading = FilterState(np.array([dq_d]), np.array([ddq_d])), APPLIED
    else:
        base, reading = continuation_base([dq_d], [ddq_d], message_id, sent, unconfirmed, DT)
    command, accel, _, _ = track_step(base.command, base.accel, goal, ACCEL, JERK, DT)
    if reading == DROPPED:
        command = clamp_to_reference(command, [dq_d], [ddq_d], WINDOW, DT)
        accel = (command - base.command) / DT
    return command, accel, reading == APPLIED


def one_cycle_late_run(rule, cycles=MAX_UNCONFIRMED - 1):
    """Every answer lands one cycle late (fewer than 20 in a row: more stop the robot). A robot
    that drops late commands only extrapolates; one that applies them judges each against the
    one before, while every state reports the extrapolation it published before the late
    command came. Returns the largest jerk
    [rad/s^3] the applying robot judged, and the largest step from the extrapolation the
    dropping robot would judge if that answer had been on time."""
    goals = np.where(np.arange(cycles) % 12 < 6, 0.4, -0.4)  # the filter ramps at its jerk bound
    applied = [(0.1, 0.0)]  # (command, acceleration) the applying robot recorded
    state = (1, 0.1, 0.0)
    sent, unconfirmed, worst_applied, worst_dropped = None, 0, 0.0, 0.0
    for k in range(cycles):
        command, accel, confirmed = next_command(rule, state, sent, unconfirmed, goals[k])
        unconfirmed = 0 if confirmed else unconfirmed + 1
        sent = sent_command(state[0], command[0], accel[0], state[1], state[2])
        extrapolated = state[1] + state[2] * DT
        worst_dropped = max(worst_dropped, abs(command[0] - extrapolated) / DT ** 2)
        # The next state goes out before this answer arrives: the robot's reference then is the
        # last applied command extrapolated one cycle.
        last, last_accel = applied[-1]
        state = (state[0] + 1, last + last_accel * DT, last_accel)
        judged_accel = (command[0] - last) / DT
        worst_applied = max(worst_applied, abs(judged_accel - last_accel) / DT)
        applied.append((command[0], judged_accel))
    return worst_applied, worst_dropped


def test_a_run_of_late_answers_stays_continuous_for_either_robot():
    worst_applied, worst_dropped = one_cycle_late_run("continuity")
    assert worst_applied <= JERK + 1e-6
    assert worst_dropped <= 0.5 * JERK_MAX + 1e-6
    # Continuing from the state alone: the applying robot's acceleration error doubles each
    # cycle (A_k = 2 A_{k-2} - A_{k-1}) until it judges a jerk over Franka's limit.
    assert one_cycle_late_run("state")[0] > JERK_MAX


def test_a_late_answer_after_a_stall_stays_within_the_jerk_limit():
    # franka-sim, traced: the answer to state 6675 was late; state 6676 reported the answer to
    # 6671 extrapolated one cycle (-0.337927 rad/s), the late answer to 6675 (-0.343927 rad/s,
    # at -2 rad/s^2) was then applied, and the next command was judged against that.
    # No robot that drops late commands reports that reference; the next command continues
    # from the late one, which franka-sim judges it against.
    sent = sent_command(6675, -0.343927, -2.0, -0.341927, -2.0)
    state = (6676, -0.337927, -2.0)
    for rule, jerk_expected in (("continuity", 0.0), ("state", 6000.0)):
        command, _, _ = next_command(rule, state, sent, 0, -1.0)
        jerk = ((command[0] - sent.command[0]) / DT - sent.accel[0]) / DT
        assert jerk == pytest.approx(jerk_expected, abs=1e-3), rule
    assert continuation_base([state[1]], [state[2]], state[0], sent, 0, DT)[1] == UNEXPLAINED


@pytest.mark.parametrize("late", [1, 3, 8, MAX_UNCONFIRMED - 1])
def test_a_robot_that_drops_late_commands_judges_no_step_beyond_the_window(late):
    # Franka's own reading: ``late`` answers in a row miss their cycles and are dropped, the robot
    # extrapolates at constant acceleration, and the next answer is on time.
    goals = np.where(np.arange(late + 1) % 2 == 0, 0.5, -0.5)  # the filter changes its mind
    reference, accel = 0.1, 1.0  # the robot's dq_d and ddq_d
    sent, unconfirmed, worst = None, 0, 0.0
    for k in range(late + 1):
        state = (k + 1, reference, accel)
        command, command_accel, applied = next_command("continuity", state, sent, unconfirmed,
                                                       goals[k])
        unconfirmed = 0 if applied else unconfirmed + 1
        sent = sent_command(state[0], command[0], command_accel[0], reference, accel)
        if k < late:  # dropped: the robot extrapolates
            reference += accel * DT
    jerk = ((command[0] - reference) / DT - accel) / DT  # the on-time answer, as judged
    assert abs(jerk) <= 0.5 * JERK_MAX + 1e-6
