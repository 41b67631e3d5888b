"""One command as a trajectory (command_trajectory.py) and its sampling as joint_trajectory_
controller samples it (trajectory_spline.py): exact ends, the bounds, rest at the end, and
consecutive messages continuing the reference."""
import numpy as np
import pytest

from reach_rl_core.command_trajectory import (TrajectoryStream, command_trajectory, evaluate,
                                              velocity_change)
from reach_rl_core.trajectory_spline import JointState3, quintic, sample

A = np.full(7, 4.0)  # rad/s^2
J = np.full(7, 500.0)  # rad/s^3
DT = 0.001  # s, the controller's cycle


def _random_start(rng):
    return JointState3(rng.uniform(-1, 1, 7), rng.uniform(-2, 2, 7), rng.uniform(-4, 4, 7))


def test_quintic_matches_both_ends_and_a_cubic_exactly():
    rng = np.random.default_rng(1)
    start, end = _random_start(rng), _random_start(rng)
    for got, want in zip(quintic(start, end, 0.3, 0.0), start):
        np.testing.assert_allclose(got, want, atol=1e-12)
    for got, want in zip(quintic(start, end, 0.3, 0.3), end):
        np.testing.assert_allclose(got, want, atol=1e-9)
    # A cubic p = t^3 is inside the quintic family: reproduced everywhere.
    cubic = lambda t: JointState3(np.array([t ** 3]), np.array([3 * t * t]), np.array([6 * t]))
    mid = quintic(cubic(0.1), cubic(0.5), 0.4, 0.25)
    for got, want in zip(mid, cubic(0.35)):
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_sample_before_between_and_after_the_points():
    times = np.array([0.01, 0.02])
    points = [JointState3(np.full(7, p), np.full(7, v), np.zeros(7)) for p, v in ((0.1, 1.0), (0.2, 0.0))]
    from reach_rl_core.trajectory_spline import Trajectory

    trajectory = Trajectory(times, np.array([p.position for p in points]),
                            np.array([p.velocity for p in points]), np.zeros((2, 7)))
    before = (-0.005, JointState3.at_rest(np.zeros(7)))
    np.testing.assert_allclose(sample(trajectory, before, -0.01).position, 0.0)  # before: held
    np.testing.assert_allclose(sample(trajectory, before, 0.01).position, 0.1)
    np.testing.assert_allclose(sample(trajectory, before, 0.02).velocity, 0.0)
    held = sample(trajectory, before, 5.0)  # after the last point: the last point, unchanged
    np.testing.assert_allclose(held.position, 0.2)
    assert 0.0 < sample(trajectory, before, 0.005).position[0] < 0.1


def test_velocity_change_is_time_optimal_within_the_bounds():
    # From rest to 1 rad/s at 4 rad/s^2 and 500 rad/s^3: 8 ms ramp, 242 ms at 4, 8 ms ramp.
    pieces = velocity_change(np.zeros(7), np.zeros(7), np.ones(7), A, J)
    np.testing.assert_allclose(pieces.durations[0], [0.008, 0.242, 0.008], atol=1e-12)
    end = evaluate(JointState3.at_rest(np.zeros(7)), pieces, 0.258)
    np.testing.assert_allclose(end.velocity, 1.0, atol=1e-12)
    np.testing.assert_allclose(end.acceleration, 0.0, atol=1e-12)
    # Accelerating away from the goal: first brake the acceleration, then come back.
    pieces = velocity_change(np.zeros(7), np.full(7, 2.0), np.zeros(7), A, J)
    late = evaluate(JointState3(np.zeros(7), np.zeros(7), np.full(7, 2.0)), pieces, 1.0)
    np.testing.assert_allclose(late.velocity, 0.0, atol=1e-12)
    assert np.all(pieces.jerks[:, 0] < 0)


@pytest.mark.parametrize("knot_dt", [0.005, 0.01])
def test_sampled_at_1khz_the_reference_keeps_the_bounds_and_ends_at_rest(knot_dt):
    """JTC's quintic splines through the knots stay close to the exact profile: acceleration
    within 1.1 A and jerk within 1.5 J (Franka: 2.5 A and 10 J here)."""
    rng = np.random.default_rng(2)
    worst_accel, worst_jerk = 0.0, 0.0
    for _ in range(60):
        start, goal = _random_start(rng), rng.uniform(-2, 2, 7)
        trajectory = command_trajectory(start, goal, 0.04, A, J, knot_dt)
        times = np.arange(0.0, trajectory.duration + 0.05, DT)
        velocity = np.array([sample(trajectory, (0.0, start), t).velocity for t in times])
        worst_accel = max(worst_accel, np.abs(np.diff(velocity, axis=0)).max() / DT)
        worst_jerk = max(worst_jerk, np.abs(np.diff(velocity, 2, axis=0)).max() / DT ** 2)
        assert not np.any(trajectory.velocities[-1]) and not np.any(trajectory.accelerations[-1])
        np.testing.assert_allclose(velocity[-1], 0.0, atol=1e-9)
    assert worst_accel < 1.1 * A[0] and worst_jerk < 1.5 * J[0]


def test_the_command_is_reached_and_held_until_the_hold_ends():
    start = JointState3.at_rest(np.zeros(7))
    goal = np.array([-0.1, -0.07, -0.04, 0.02, 0.05, 0.08, 0.1])  # reached within 0.04 s
    trajectory = command_trajectory(start, goal, 0.06, A, J, 0.01)
    np.testing.assert_allclose(trajectory.velocities[4], goal, atol=1e-12)  # at 0.05 s
    assert np.all(np.abs(trajectory.velocities[7]) < np.abs(goal))  # braking by 0.08 s


def test_bad_hold_or_knot_spacing_is_refused():
    with pytest.raises(ValueError, match="must be > 0"):
        command_trajectory(JointState3.at_rest(np.zeros(7)), np.zeros(7), 0.0, A, J, 0.01)


def test_stream_repeats_the_reference_for_the_takeover_margin_then_changes_it():
    stream = TrajectoryStream(A, J, 0.04, 0.01, takeover_margin=0.02)
    q = np.linspace(-0.5, 0.5, 7)
    first = stream.next(100.0, np.full(7, 0.5), q)
    assert list(first.times[:2]) == [0.0, 0.02]  # JTC takes it over after its stamp
    np.testing.assert_allclose(first.positions[:2], [q] * 2)  # at rest for the margin
    assert np.all(first.velocities[2] > 0.0)  # then toward the command
    second = stream.next(100.017, np.full(7, -0.5), q + 1.0)  # the measured q is not used
    # Its points over the margin: 0, the first message's points at 0.003 s and 0.013 s, 0.02.
    np.testing.assert_allclose(second.times[:4], [0.0, 0.003, 0.013, 0.02], atol=1e-12)
    for t in np.linspace(0.0, 0.02, 41):  # a takeover within the margin: the old reference,
        old = sample(first, (0.0, first.point(0)), 0.017 + t)  # exactly, between points too
        new = sample(second, (0.0, second.point(0)), t)
        np.testing.assert_allclose(new.position, old.position, atol=1e-12)
        np.testing.assert_allclose(new.velocity, old.velocity, atol=1e-9)
        np.testing.assert_allclose(new.acceleration, old.acceleration, atol=1e-6)
    assert np.all(second.velocities[-2] <= 0.0)  # then toward the new command
    # Once the last message is over: from rest where the arm is measured.
    third = stream.next(100.017 + second.duration + 0.001, np.zeros(7), q + 0.25)
    np.testing.assert_allclose(third.positions[0], q + 0.25)
    np.testing.assert_allclose(third.positions[-1], q + 0.25)  # a zero command: it stays
