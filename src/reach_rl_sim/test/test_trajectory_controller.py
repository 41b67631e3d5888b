"""The joint_trajectory_controller model (trajectory_controller.py), case by case against JTC's
documented behaviour for the topic path's configuration: a new message takes over at the next
update from the last commanded state, the last point is held, stamps in the past or future,
the messages JTC refuses (the old trajectory runs on), joints reordered by name."""
import numpy as np
import pytest

from reach_rl_core.command_trajectory import TrajectoryStream
from reach_rl_core.franka_model import READY_POSE, joint_names
from reach_rl_core.trajectory_spline import JointState3, Trajectory, quintic, sample
from reach_rl_sim.trajectory_controller import (DROPPED_INACTIVE, NOT_MODELLED,
                                                TrajectoryController)

NAMES = joint_names("fr3")
T0 = 1000.0  # s, the stamps' clock at activation
DT = 0.001  # s, the controller's update period
P = 5.0  # 1/s
Q0 = np.array(READY_POSE)
A = np.full(7, 4.0)  # rad/s^2, the stream's bounds
J = np.full(7, 500.0)  # rad/s^3
GOAL = np.array([0.5, -0.3, 0.2, 0.4, -0.5, 0.3, 0.6])  # rad/s
OTHER_GOAL = np.array([-0.4, 0.2, 0.5, -0.3, 0.1, -0.6, 0.0])


def at(k: int) -> float:
    """The time [s] of update ``k`` after activation."""
    return T0 + k * DT


def active_controller() -> TrajectoryController:
    """Activated at T0 with the arm at rest at Q0, and updated once there (k = 0)."""
    controller = TrajectoryController(NAMES, P)
    controller.activate(T0, Q0)
    controller.update(at(0), Q0, np.zeros(7))
    return controller


def send(controller, trajectory: Trajectory, stamp: float, now: float, names=NAMES,
         order=None) -> str:
    """``trajectory`` as a message stamped ``stamp`` [s], received at ``now`` [s]; ``order``:
    the message's columns, as indices into the controller's joints."""
    columns = list(range(7)) if order is None else list(order)
    return controller.receive([names[i] for i in columns], stamp, trajectory.times,
                              trajectory.positions[:, columns],
                              trajectory.velocities[:, columns],
                              trajectory.accelerations[:, columns], now)


def run(controller, first: int, last: int, lag=0.0):
    """Updates ``first``..``last`` with the arm ``lag`` [rad] behind the last desired position;
    (commands, desired states) per update."""
    commands, desired = [], []
    for k in range(first, last + 1):
        measured = controller.desired.position - lag
        commands.append(controller.update(at(k), measured, controller.desired.velocity))
        desired.append(controller.desired)
    return np.array(commands), desired


def moving(start_k: int = 1, goal=GOAL, hold: float = 0.3):
    """A controller following a stream message toward ``goal`` stamped just before update
    ``start_k``, and that message's stream."""
    controller = active_controller()
    stream = TrajectoryStream(A, J, hold, 0.01, takeover_margin=0.02)
    stamp = at(start_k) - 0.0005
    assert send(controller, stream.next(stamp, goal, Q0), stamp, stamp) == ""
    return controller, stream


def points(times, positions, velocities, accelerations=None) -> Trajectory:
    """A message's points: rows of 7 per point, accelerations zero unless given."""
    positions = np.asarray(positions, dtype=float)
    accelerations = np.zeros_like(positions) if accelerations is None else accelerations
    return Trajectory(np.asarray(times, dtype=float), positions,
                      np.asarray(velocities, dtype=float), np.asarray(accelerations, dtype=float))


def ramp(start, velocity, times) -> Trajectory:
    """Points along start + velocity * t, the last one at rest."""
    times = np.asarray(times, dtype=float)
    positions = start + np.outer(times, velocity)
    velocities = np.tile(velocity, (len(times), 1))
    velocities[-1] = 0.0
    return points(times, positions, velocities)


def test_activation_holds_the_measured_position():
    controller = TrajectoryController(NAMES, P)
    controller.activate(T0, Q0 + 0.01)
    command = controller.update(at(0), Q0, np.zeros(7))
    np.testing.assert_array_equal(controller.desired.position, Q0 + 0.01)
    np.testing.assert_array_equal(controller.desired.velocity, np.zeros(7))
    np.testing.assert_allclose(command, P * 0.01, rtol=1e-9)  # only the P term: no feed-forward


def test_the_command_is_the_next_samples_velocity_plus_p_times_the_position_error():
    controller, _ = moving()
    message, stamp = controller.pending
    run(controller, 1, 59)
    measured = controller.desired.position - 0.003
    command = controller.update(at(60), measured, np.zeros(7))
    before = controller.current.before
    relative = (before[0] - stamp, before[1])
    now, next_ = (sample(message, relative, at(k) - stamp) for k in (60, 61))
    assert np.abs(next_.velocity - now.velocity).max() > 1e-3  # accelerating: they differ
    np.testing.assert_allclose(command, next_.velocity + P * (now.position - measured), atol=1e-12)


def test_a_replacement_mid_segment_continues_from_the_last_commanded_state():
    """interpolate_from_desired_state: the new trajectory starts from the state the previous
    update commanded (its sample one period ahead) stamped with that update's time, not from
    the measured state, which here lags 20 mrad behind: the desired position and velocity go
    on across the switch."""
    controller, stream = moving()
    _, desired = run(controller, 1, 120, lag=0.02)
    commanded = controller.last_commanded
    stamp = at(120) + 0.0005
    assert send(controller, stream.next(stamp, OTHER_GOAL, Q0), stamp, stamp) == ""
    np.testing.assert_array_equal(controller.desired.position, desired[-1].position)  # not yet
    _, after = run(controller, 121, 121, lag=0.02)
    assert controller.current.before[0] == at(120)
    np.testing.assert_array_equal(controller.current.before[1].position, commanded.position)
    speed = np.abs(desired[-1].velocity)
    assert np.all(speed > 0.1)  # mid-motion, the arm moving on every joint
    # The stored state is one period ahead of its time, so the reference advances two periods'
    # travel in one (plus 8 urad of acceleration), where the measured state is 20 mrad away.
    step = np.abs(after[0].position - desired[-1].position)
    assert np.all(step <= 2.0 * DT * speed + 1e-5), step
    np.testing.assert_allclose(after[0].velocity, desired[-1].velocity, atol=0.01)


def test_after_the_last_point_the_last_point_is_held():
    controller, _ = moving(hold=0.05)
    end = controller.pending[0]
    run(controller, 1, int(round((end.times[-1] + 0.1) / DT)))
    np.testing.assert_array_equal(controller.desired.position, end.positions[-1])
    np.testing.assert_array_equal(controller.desired.velocity, np.zeros(7))
    offset = np.linspace(-0.01, 0.01, 7)
    command = controller.update(at(1000), end.positions[-1] - offset, np.zeros(7))
    np.testing.assert_allclose(command, P * offset, rtol=1e-9, atol=1e-15)


def test_a_past_stamp_with_a_future_end_jumps_into_a_later_segment():
    controller = active_controller()
    message = ramp(Q0, np.full(7, 0.5), [0.1, 0.2, 0.3])
    now = at(0) + 0.0005
    stamp = now - 0.15  # points at now - 0.05, now + 0.05, now + 0.15
    assert send(controller, message, stamp, now) == ""
    run(controller, 1, 1)
    want = sample(message, (-1.0, JointState3.at_rest(Q0)), at(1) - stamp)
    np.testing.assert_allclose(controller.desired.position, want.position, atol=1e-12)
    assert np.all(controller.desired.position - Q0 > 0.07)  # jumped, 75 mrad in one period


def test_a_message_entirely_in_the_past_is_refused_and_the_old_one_runs_on():
    controller, _ = moving()
    twin, _ = moving()
    run(controller, 1, 50)
    run(twin, 1, 50)
    now = at(50) + 0.0005
    reason = send(controller, ramp(Q0, np.full(7, 0.5), [0.1, 0.2, 0.3]), now - 1.0, now)
    assert "past" in reason and controller.rejected == 1
    np.testing.assert_array_equal(run(controller, 51, 150)[0], run(twin, 51, 150)[0])


def test_a_message_without_points_is_refused_and_the_old_one_runs_on():
    controller, _ = moving()
    twin, _ = moving()
    run(controller, 1, 50)
    run(twin, 1, 50)
    empty = Trajectory(np.zeros(0), np.zeros((0, 7)), np.zeros((0, 7)), np.zeros((0, 7)))
    assert send(controller, empty, 0.0, at(50)) == "no points"
    np.testing.assert_array_equal(run(controller, 51, 150)[0], run(twin, 51, 150)[0])


def test_a_last_point_that_is_not_at_rest_is_refused():
    controller = active_controller()
    message = ramp(Q0, np.full(7, 0.5), [0.1, 0.2])
    message.velocities[-1, 2] = 1e-3
    reason = send(controller, message, 0.0, at(0))
    assert "fr3_joint3" in reason and "not 0" in reason
    message.velocities[-1, 2] = 1e-8  # below float32 epsilon: zero to JTC
    message.accelerations[-1, 4] = 0.5  # JTC checks the last velocity only
    assert send(controller, message, 0.0, at(0)) == ""
    assert (controller.accepted, controller.rejected) == (1, 1)


def test_joints_in_another_order_are_reordered_by_name():
    in_order, _ = moving()
    shuffled = active_controller()
    message = in_order.pending[0]
    stamp = at(1) - 0.0005
    assert send(shuffled, message, stamp, stamp, order=[6, 2, 0, 5, 1, 4, 3]) == ""
    commands, desired = run(in_order, 1, 300)
    shuffled_commands, shuffled_desired = run(shuffled, 1, 300)
    np.testing.assert_array_equal(shuffled_commands, commands)
    assert np.abs(desired[-1].position - Q0).max() > 0.05  # it moved each joint its own way


def test_a_future_stamp_stretches_the_segment_to_the_first_point():
    """Nothing waits for the stamp: the spline from the point before (the last update) to point
    0 spans until stamp + point 0's time, and the motion starts at once."""
    controller = active_controller()
    message = ramp(Q0 + 0.2, np.zeros(7), [0.1, 0.2])
    now = at(0) + 0.0005
    stamp = now + 0.5
    assert send(controller, message, stamp, now) == ""
    run(controller, 1, 300)
    span = stamp + 0.1 - at(0)
    want = quintic(JointState3.at_rest(Q0), message.point(0), span, at(300) - at(0))
    np.testing.assert_allclose(controller.desired.position, want.position, atol=1e-12)
    assert np.all(controller.desired.position - Q0 > 0.05)  # well under way before the stamp
    run(controller, 301, 700)  # past point 0 (at 600.5): there at rest
    np.testing.assert_allclose(controller.desired.position, Q0 + 0.2, atol=1e-12)


def test_a_zero_stamp_starts_at_the_first_update_and_a_point_at_zero_is_a_step():
    controller = active_controller()
    message = ramp(Q0 + 0.1, np.full(7, 0.2), [0.0, 0.1])
    assert send(controller, message, 0.0, at(0) + 0.0003) == ""
    run(controller, 1, 1)
    np.testing.assert_array_equal(controller.desired.position, Q0 + 0.1)  # stepped to point 0
    run(controller, 2, 51)
    want = sample(message, (0.0, message.point(0)), at(51) - at(1))  # timed from update 1
    np.testing.assert_allclose(controller.desired.position, want.position, atol=1e-12)


def test_the_newest_pending_message_replaces_an_older_one():
    controller = active_controller()
    up, down = ramp(Q0, np.full(7, 0.3), [0.1, 0.2]), ramp(Q0, np.full(7, -0.3), [0.1, 0.2])
    assert send(controller, up, 0.0, at(0)) == ""
    assert send(controller, down, 0.0, at(0) + 0.0002) == ""
    run(controller, 1, 100)
    assert np.all(controller.desired.position < Q0)
    assert controller.accepted == 2


@pytest.mark.parametrize("case, expected", [
    ("six joints", "names 6 joints"),
    ("unknown joint", "'panda_joint3' is not one of"),
    ("times not increasing", "not strictly increasing"),
    ("positions missing a joint", "point 1 has 6 positions"),
    ("velocities of the wrong size", "point 0 has 3 velocities"),
    ("effort", "effort"),
    ("no velocities", NOT_MODELLED),
    ("a joint named twice", NOT_MODELLED),
])
def test_malformed_messages_are_refused_with_the_reason(case, expected):
    controller = active_controller()
    names = list(NAMES)
    message = ramp(Q0, np.full(7, 0.3), [0.1, 0.2])
    times = list(message.times)
    positions = [list(row) for row in message.positions]
    velocities = [list(row) for row in message.velocities]
    accelerations = [list(row) for row in message.accelerations]
    efforts = None
    if case == "six joints":
        names, positions = names[:6], [row[:6] for row in positions]
    elif case == "unknown joint":
        names[2] = "panda_joint3"
    elif case == "times not increasing":
        times[1] = times[0]
    elif case == "positions missing a joint":
        positions[1] = positions[1][:6]
    elif case == "velocities of the wrong size":
        velocities[0] = velocities[0][:3]
    elif case == "effort":
        efforts = [[0.0] * 7, [0.0] * 7]
    elif case == "no velocities":
        velocities = [[], []]
    elif case == "a joint named twice":
        names[6] = names[0]
    reason = controller.receive(names, 0.0, times, positions, velocities, accelerations, at(0),
                                efforts=efforts)
    assert expected in reason, reason
    assert (controller.accepted, controller.rejected, controller.pending) == (0, 1, None)


def test_deactivated_it_commands_zero_and_drops_messages_until_activated_again():
    controller, _ = moving()
    run(controller, 1, 100)
    controller.deactivate()
    np.testing.assert_array_equal(controller.update(at(101), Q0, np.zeros(7)), np.zeros(7))
    assert send(controller, ramp(Q0, np.full(7, 0.3), [0.1, 0.2]), 0.0, at(101)) == DROPPED_INACTIVE
    controller.activate(at(102), Q0 + 0.05)
    controller.update(at(102), Q0, np.zeros(7))
    run(controller, 103, 200)
    np.testing.assert_array_equal(controller.desired.position, Q0 + 0.05)  # held, nothing else
