"""franka_standin_node: franka_ros2's joint_trajectory_controller data path on franka-sim, as a
real process.

The libfranka loop's source is tested without a robot: the controller model activated at the
measured position when a motion starts, driven by the system clock, zeros once deactivated. The
node itself against franka-sim: joint states every cycle, a trajectory moving the arm and held
at its last point, refused trajectories logged and counted while the arm stays, a reference
step the FCI refuses reported as a reflex and recovered only by ``~/recover``, after which the
arm is held where it is, and ``~/active``.
"""
import threading
import time

import numpy as np
import pytest
from libfranka_fakes import RobotState

from reach_rl_core.franka_model import READY_POSE, joint_names
from reach_rl_sim.franka_standin_node import JOINT_STATES_TOPIC, TRAJECTORY_TOPIC
from reach_rl_sim.trajectory_motion import ControllerClock, TrajectoryMotion
from reach_rl_sim.trajectory_controller import (DROPPED_INACTIVE,
                                                TrajectoryController)

NAMES = joint_names("fr3")
Q0 = np.array(READY_POSE)


def test_motion_runs_the_controller_a_period_per_update_and_stops_when_deactivated():
    controller = TrajectoryController(NAMES, 5.0)
    active, stopping = threading.Event(), threading.Event()
    active.set()
    system_clock = [2000.0]
    motion = TrajectoryMotion(controller, threading.Lock(), active, stopping,
                              clock=lambda: system_clock[0])
    at_rest = RobotState(tuple(Q0 + 0.01), (0.0,) * 7, (0.0,) * 7)
    assert motion.wants_motion(at_rest)
    motion.start()
    command, done = motion.command(at_rest, 7.5)  # 7.5: the loop's monotonic time, unused
    np.testing.assert_array_equal(command, np.zeros(7))  # held where it was measured
    assert not done and controller.active
    positions = np.array([Q0 + 0.01 + 0.025, Q0 + 0.01 + 0.05])
    velocities = np.array([np.full(7, 0.1), np.zeros(7)])
    assert controller.receive(NAMES, 2000.0005, [0.5, 1.0], positions, velocities,
                              np.zeros((2, 7)), 2000.0005) == ""
    for k in range(1, 251):  # a period per update, the system clock read with jitter
        system_clock[0] = 2000.0 + 0.001 * k + 0.0004 * (k % 3)
        command, done = motion.command(at_rest.at(0.001 * k), 7.5 + 0.001 * k)
    assert np.all(command > 0.05) and not done  # under way on the stamps' clock
    assert motion.controller_clock.now == pytest.approx(2000.25, abs=0.001)
    active.clear()
    moving = RobotState(at_rest.q, (0.1,) * 7, (0.1,) * 7)
    np.testing.assert_array_equal(motion.command(moving.at(0.251), 7.502)[0], np.zeros(7))
    assert not motion.command(moving.at(0.252), 7.503)[1]  # zeros until the robot stands still
    assert motion.command(at_rest.at(0.253), 7.504)[1]
    assert controller.receive(NAMES, 0.0, [0.5, 1.0], positions, velocities, np.zeros((2, 7)),
                              2000.3) == DROPPED_INACTIVE
    assert not motion.wants_motion(at_rest)


def test_messages_reach_the_controller_after_the_command_is_out_and_the_newest_takes_over():
    from reach_rl_core.trajectory_spline import Trajectory
    from reach_rl_deploy.interfaces.ros2_control import trajectory_message

    controller = TrajectoryController(NAMES, 0.0)
    active, stopping = threading.Event(), threading.Event()
    active.set()
    inbox, reasons = [], []
    motion = TrajectoryMotion(controller, threading.Lock(), active, stopping,
                              clock=lambda: 2000.0, inbox=lambda: [inbox.pop(0) for _ in list(inbox)],
                              on_received=reasons.append)
    at_rest = RobotState(tuple(Q0), (0.0,) * 7, (0.0,) * 7)
    motion.start()
    motion.command(at_rest, 0.0)  # activated: holds the measured position

    def cruising(speed):  # rad/s on every joint for 1 s, then at rest 1 s later
        return trajectory_message(Trajectory(
            np.array([0.0, 1.0, 2.0]), np.array([Q0, Q0 + speed, Q0 + 1.5 * speed]),
            np.array([np.full(7, speed), np.full(7, speed), np.zeros(7)]), np.zeros((3, 7))),
            NAMES, 0.0)

    inbox.extend([cruising(0.1), cruising(0.2)])
    np.testing.assert_array_equal(motion.command(at_rest.at(0.001), 0.001)[0], np.zeros(7))
    motion.after_write(at_rest, 0.001)
    assert reasons == ["", ""] and not inbox
    assert controller.accepted == 2 and controller.superseded == 1
    command, _ = motion.command(at_rest.at(0.002), 0.002)
    assert command == pytest.approx(np.full(7, 0.2), abs=0.01)  # the newest one took over


def test_the_controller_clock_runs_on_the_robots_time_and_follows_the_system_clock():
    """Scheduling jitter of the system-clock reads stays out (each step is the robot's, within
    the slew); cycles the robot extrapolated advance it as far as the robot's clock; a robot
    clock running 0.5 % slow against the system clock is followed."""
    rng = np.random.default_rng(3)
    clock = ControllerClock(slew=1e-4)
    wall, robot, times, robot_steps = 100.0, 7.0, [], []
    for k in range(5000):
        step = 0.004 if k % 500 == 499 else 0.001  # now and then 3 cycles lost
        robot += step
        wall += 1.005 * step
        times.append(clock.tick(wall + rng.uniform(0.0, 0.002), robot))
        robot_steps.append(step)
    steps = np.diff(times)
    assert np.all(np.abs(steps - np.array(robot_steps[1:])) <= 1e-4 + 1e-12)
    assert abs(times[-1] - wall) < 0.003  # follows the drift
    clock.reset()
    assert clock.tick(500.0, 9.0) == 500.0  # a new motion starts on the system clock


def test_the_controller_clock_catches_up_after_robot_and_loop_stalled_together():
    clock = ControllerClock(slew=1e-4, catch_up_after=3e-3, catch_up=5e-4)
    clock.tick(100.0, 7.0)
    walls = 100.030 + 0.001 * np.arange(100)  # 30 ms of system clock, 1 ms of the robot's
    times = [clock.tick(wall, 7.001 + 0.001 * k) for k, wall in enumerate(walls)]
    steps = np.diff([100.0] + times)
    assert np.all(steps <= 0.001 + 5e-4 + 1e-12)  # the reference at most 1.5 times as fast
    behind = walls - np.array(times)
    assert behind[0] > 0.025 and np.argmax(behind < 3e-3) <= 60  # within 3 ms after 60 updates
    assert np.all(np.abs(steps[70:] - 0.001) <= 1e-4 + 1e-12)  # then at the robot's pace again


ros_harness = pytest.importorskip("ros_harness")  # skips where rclpy is absent
from franka_sim_harness import franka_sim_fixture  # noqa: E402
from ros_harness import NodeProcess, TestNode, ros_context_fixture, test_node_name  # noqa: E402

from builtin_interfaces.msg import Duration, Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from reach_rl_deploy.ros_plumbing.qos import reliable  # noqa: E402

pytestmark = pytest.mark.ros
ros_context = pytest.fixture(scope="module")(ros_context_fixture)
franka_sim = pytest.fixture(scope="module")(franka_sim_fixture)


def to_time(seconds: float) -> Time:
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1000000000, nanosec=nanoseconds % 1000000000)


def trajectory(stamp: float, times, positions, last_velocity: float = 0.0,
               first_velocity: float = 0.0) -> JointTrajectory:
    """Points at ``times`` [s] at ``positions`` [rad], at rest but for ``first_velocity`` and
    ``last_velocity`` [rad/s] of joint 1 at the first and the last one."""
    msg = JointTrajectory(joint_names=list(NAMES))
    msg.header.stamp = to_time(stamp)
    for i, (t, q) in enumerate(zip(times, positions)):
        velocity = [0.0] * 7
        if i == 0:
            velocity[0] = first_velocity
        if i == len(times) - 1:
            velocity[0] = last_velocity
        at = to_time(t)
        msg.points.append(JointTrajectoryPoint(
            positions=[float(v) for v in q], velocities=velocity, accelerations=[0.0] * 7,
            time_from_start=Duration(sec=at.sec, nanosec=at.nanosec)))
    return msg


def diagnostic(diagnostics, key: str) -> int:
    """The last ``key`` the stand-in published on /diagnostics (-1 before any)."""
    values = [int(kv.value) for d in diagnostics for s in d.status if s.name == "franka_standin"
              for kv in s.values if kv.key == key]
    return values[-1] if values else -1


class StandinOperator:
    """The test's side of the stand-in: its joint states, /diagnostics, a trajectory publisher."""

    def __init__(self, operator, standin, franka_sim):
        self.operator, self.standin, self.franka_sim = operator, standin, franka_sim
        self.states, self.sent, self.diagnostics = [], [], []
        operator.record(JointState, JOINT_STATES_TOPIC, 1000, self.states, sent=self.sent)
        operator.record(DiagnosticArray, "/diagnostics", 10, self.diagnostics, stamp=False)
        self.publisher = operator.node.create_publisher(JointTrajectory, TRAJECTORY_TOPIC,
                                                        reliable(10))

    def position(self):
        with self.operator.lock:
            return np.array(self.states[-1][1].position)

    def count(self, key: str, value: int) -> None:
        self.operator.wait_for(lambda: diagnostic(self.diagnostics, key) == value, 5.0,
                               "%s %d on /diagnostics" % (key, value))


FOLLOW_P_GAIN = 5.0  # 1/s, JTC's gains.<joint>.p in the following test (franka_ros2's check used 5)


def _states_every_cycle(op: StandinOperator) -> None:
    op.operator.wait_for(lambda: len(op.states) > 2000, 60.0, "2000 joint states")
    with op.operator.lock:  # a figure, not a judge (rates are bench/ figures)
        periods = np.diff(np.array(op.sent[-1000:]))
        stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for _, m in op.states[-1000:]]
    print("joint state period median %.3f ms" % (1e3 * np.median(periods)))
    assert np.all(np.diff(stamps) > 0.0)  # one state per robot cycle, each stamped anew
    op.operator.wait_for(lambda: op.publisher.get_subscription_count() > 0, 10.0,
                         "the stand-in's trajectory subscription")


def _follows_then_holds_and_refuses(op: StandinOperator):
    # 20 mrad on joint 1 in 1 s from rest to rest: followed, then the last point held (the
    # stand-in runs with JTC's P term here: with p = 0, franka.launch.py's gain, nothing but the
    # policy closes the loop on position, and cycles this Python loop loses on a loaded machine,
    # which the robot extrapolates, left the arm 3 mrad short in one CI run).
    start = op.position()
    goal = start + np.eye(7)[0] * 0.02
    op.publisher.publish(trajectory(time.time(), [1.0], [goal]))
    time.sleep(2.5)
    print("joint 1 %.2f mrad from the last point 1.5 s after it" % (1e3 * (op.position() - goal)[0]))
    np.testing.assert_allclose(op.position(), goal, atol=0.003)
    # Refused, the arm stays: a last point that moves, a trajectory over before it came.
    op.publisher.publish(trajectory(time.time(), [0.5], [start], last_velocity=0.1))
    op.publisher.publish(trajectory(time.time() - 10.0, [0.5], [start]))
    op.standin.wait_for_line("trajectory rejected: the last point's velocity of fr3_joint1", 5.0)
    op.count("trajectories rejected", 2)
    np.testing.assert_allclose(op.position(), goal, atol=0.003)
    assert not [line for line in op.franka_sim.violations() if "discontinuity" in line]


def _a_step_reflexes_and_recovers(op: StandinOperator) -> None:
    # A point at time 0 is a step of the reference: moving at 0.5 rad/s, a velocity step no
    # FCI accepts: Franka's reflex, reported.
    here = op.position()
    op.publisher.publish(trajectory(0.0, [0.0, 0.2], [here, here + np.eye(7)[0] * 0.05],
                                    first_velocity=0.5))
    op.standin.wait_for_line("robot reflex", 10.0)
    op.operator.wait_for(lambda: any(s.name == "franka_standin" and s.message.startswith("reflex")
                                     for d in op.diagnostics for s in d.status), 5.0,
                         "the reflex on /diagnostics")
    assert any(line for line in op.franka_sim.violations() if "discontinuity" in line)
    assert op.operator.call(Trigger, "/franka_standin/recover", Trigger.Request()).success
    op.standin.wait_for_line("automatic error recovery", 5.0)
    time.sleep(1.5)  # the next motion holds the arm where it is, not at the old reference
    assert sum("robot reflex" in line for line in op.standin.lines) == 1, op.standin.output


def _deactivated_drops_trajectories(op: StandinOperator) -> None:
    # Deactivated: zeros until at rest, the motion ends, trajectories are dropped.
    held = op.position()
    assert op.operator.call(SetBool, "/franka_standin/active", SetBool.Request(data=False)).success
    op.standin.wait_for_line("motion finished (deactivated)", 5.0)
    op.publisher.publish(trajectory(time.time(), [0.5], [held + np.eye(7)[0] * 0.01]))
    op.count("trajectories dropped while inactive", 1)
    np.testing.assert_allclose(op.position(), held, atol=0.003)


def test_trajectories_move_the_arm_refusals_are_reported_and_reflexes_recovered(
        franka_sim, ros_context, request):
    operator = TestNode(ros_context, test_node_name(request))
    # franka_ros2's default, no rate limiter: the reference step below reaches the robot.
    standin = NodeProcess("reach_rl_sim.franka_standin_node",
                          [("robot_ip", "127.0.0.1"), ("velocity_rate_limit", False),
                           ("p_gain", FOLLOW_P_GAIN)])
    op = StandinOperator(operator, standin, franka_sim)
    try:
        _states_every_cycle(op)
        _follows_then_holds_and_refuses(op)
        _a_step_reflexes_and_recovers(op)
        _deactivated_drops_trajectories(op)
        assert standin.interrupt(15.0) == 0, standin.output
    finally:
        standin.stop()
        operator.close()
