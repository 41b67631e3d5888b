"""sim_robot_node over real DDS: the node runs as its own process, this test process talks to it.

Each test starts ``python -m reach_rl_sim.sim_robot_node`` with a session-random
ROS_DOMAIN_ID and DDS discovery kept on localhost, publishes trajectories on the joint
trajectory controller's topic (as the deploy node makes them, ``TrajectoryStream``, or
hand-made ones) and watches joint states, refusals, reflexes and reset.
"""
import time

import numpy as np
import pytest
from ros_harness import NodeProcess, TestNode, ros_context_fixture, test_node_name

from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from reach_rl_core.command_trajectory import TrajectoryStream  # noqa: E402
from reach_rl_core.filter_limits import ROS2_CONTROL, FilterLimits  # noqa: E402
from reach_rl_core.franka_model import FR3, READY_POSE, joint_names  # noqa: E402
from reach_rl_core.trajectory_spline import JointState3, Trajectory, sample  # noqa: E402
from reach_rl_deploy.ros_plumbing.qos import reliable  # noqa: E402
from reach_rl_deploy.interfaces.ros2_control import KNOT_DT, trajectory_message  # noqa: E402
from reach_rl_sim.trajectory_topic import TRAJECTORY_TOPIC, seconds  # noqa: E402

pytestmark = pytest.mark.ros

NAMES = joint_names("fr3")
READY = np.array(READY_POSE)
LIMITS = FilterLimits.for_interface(FR3, ROS2_CONTROL, control_rate=50.0)
GOAL = np.array([0.2, 0.0, -0.15, 0.1, 0.0, 0.0, 0.2])  # rad/s

ros_context = pytest.fixture(scope="module")(ros_context_fixture)


# s the trajectory rests at its start before it moves: a message that reaches the simulated
# controller later than this after its stamp takes over mid-ramp (a step: a reflex). The deploy
# node allows one policy period plus its backdate; a test on a loaded CI host allows more (one
# CI run saw a 0.3 s move reflex at 113 rad/s^2 with one period, 20 ms).
DELIVERY_SLACK = 0.2

class Harness(TestNode):
    """This test's side: records what the sim publishes, sends trajectories, calls ~/reset."""

    def __init__(self, context, name, process):
        super().__init__(context, name)
        self.process = process
        self.states = []  # (receive time [s, monotonic], JointState)
        self.reflexes = []
        self.pub = self.node.create_publisher(JointTrajectory, TRAJECTORY_TOPIC, reliable(10))
        self.record(JointState, "/joint_states", 1000, self.states)
        self.record(String, "/sim_robot/reflex", reliable(10, latched=True), self.reflexes,
                    stamp=False, keep=lambda msg: msg.data)

    def latest(self) -> JointState:
        with self.lock:
            return self.states[-1][1]

    def position(self) -> np.ndarray:
        return np.array(self.latest().position)

    def publish(self, trajectory: Trajectory, stamp: float, names=NAMES) -> None:
        self.pub.publish(trajectory_message(trajectory, names, stamp))

    def move(self, goal, hold: float, start):
        """Publish, stamped now, the deploy node's trajectory toward joint velocities ``goal``
        [rad/s] held ``hold`` [s], from rest at ``start`` [rad]; (that Trajectory, its stamp)."""
        stamp = time.time()
        trajectory = TrajectoryStream(LIMITS.accel, LIMITS.jerk, hold, KNOT_DT,
                                      takeover_margin=DELIVERY_SLACK).next(stamp, goal, start)
        self.publish(trajectory, stamp)
        return trajectory, stamp

    def reset(self):
        return self.call(Trigger, "/sim_robot/reset", Trigger.Request())


@pytest.fixture
def sim(ros_context, request):
    process = NodeProcess("reach_rl_sim.sim_robot_node", [("robot", "fr3")])
    harness = Harness(ros_context, test_node_name(request), process)
    try:
        harness.wait_for(lambda: harness.states, 15.0, "the first JointState from sim_robot_node")
        harness.wait_for(lambda: harness.pub.get_subscription_count() > 0, 10.0,
                         "sim_robot_node's trajectory subscription")
        yield harness
    finally:
        harness.close()
        process.stop()


def at_rest(position) -> Trajectory:
    """A trajectory of one point at ``position`` [rad], at rest, 0.1 s after its start."""
    state = JointState3.at_rest(position)
    return Trajectory(np.array([0.1]), state.position[None], state.velocity[None],
                      state.acceleration[None])


def test_follows_a_trajectory_on_the_stamps_clock_and_holds_its_last_point(sim):
    first = sim.latest()
    assert tuple(first.name) == NAMES
    np.testing.assert_allclose(first.position, READY, atol=1e-12)  # held where it started
    trajectory, stamp = sim.move(GOAL, 0.5, READY)
    end = stamp + trajectory.duration
    time.sleep(max(0.0, end - time.time()) + 1.0)
    last = trajectory.positions[-1]
    assert np.all(np.sign(last - READY) == np.sign(GOAL))  # a real motion, each way
    np.testing.assert_allclose(sim.position(), last, atol=1e-4)
    assert np.abs(sim.latest().velocity).max() < 1e-4
    assert sim.reflexes == []
    # Every state during the motion is near the trajectory's reference at its stamp (a late
    # takeover and the actuator lag cost millimetres; another clock would cost the motion).
    with sim.lock:
        during = [m for _, m in sim.states if stamp <= seconds(m.header.stamp) <= end]
    before = (0.0, trajectory.point(0))
    errors = [np.abs(np.array(m.position) - sample(trajectory, before,
                                                   seconds(m.header.stamp) - stamp).position).max()
              for m in during]
    print("largest tracking error %.2f mrad over %d states" % (1e3 * max(errors), len(errors)))
    assert len(errors) > 100 and max(errors) < 0.02


def test_refused_trajectories_are_logged_and_counted_not_a_reflex(sim):
    moving_end = at_rest(READY)._replace(velocities=np.array([[0.1] + [0.0] * 6]))
    sim.publish(moving_end, time.time())
    sim.publish(at_rest(READY + 0.05), time.time(), names=joint_names("panda"))
    sim.publish(at_rest(READY + 0.05), time.time() - 10.0)
    sim.process.wait_for_line("trajectory rejected (1 so far): the last point's velocity of "
                              "fr3_joint1", 5.0)
    time.sleep(0.5)
    np.testing.assert_allclose(sim.position(), READY, atol=1e-12)  # the hold runs on
    assert sim.reflexes == []
    assert sim.process.interrupt(10.0) == 0
    assert "trajectories: 0 accepted, 3 rejected" in sim.process.output


def test_reference_step_reflexes_stops_and_resets(sim):
    moving = np.eye(7)[3] * 0.5  # rad/s on joint 4 at a point at time 0: a velocity step
    step = Trajectory(np.array([0.0, 0.2]), np.array([READY, READY + np.eye(7)[3] * 0.05]),
                      np.array([moving, np.zeros(7)]), np.zeros((2, 7)))
    sim.publish(step, 0.0)
    sim.wait_for(lambda: sim.reflexes, 5.0, "a reflex after a step of the reference")
    error = sim.reflexes[0]
    assert "fr3_joint4" in error and "joint_acceleration_limit_violation" in error
    # The arm stands still while in the reflex, whatever is sent.
    time.sleep(0.05)
    held = sim.position()
    sim.move(GOAL, 0.5, held)
    time.sleep(0.5)
    np.testing.assert_array_equal(sim.position(), held)
    np.testing.assert_array_equal(sim.latest().velocity, 0.0)
    assert len(sim.reflexes) == 1
    response = sim.reset()
    assert response.success and "fr3_joint4" in response.message
    assert sim.reset().message == "no reflex active"
    # After the reset the controller holds the arm where it stands (the step is forgotten),
    # and a trajectory moves it again without a new reflex.
    time.sleep(0.3)
    np.testing.assert_allclose(sim.position(), held, atol=1e-12)
    trajectory, stamp = sim.move(GOAL, 0.3, held)
    time.sleep(max(0.0, stamp + trajectory.duration - time.time()) + 1.0)
    np.testing.assert_allclose(sim.position(), trajectory.positions[-1], atol=1e-4)
    assert sim.reflexes == [error]
