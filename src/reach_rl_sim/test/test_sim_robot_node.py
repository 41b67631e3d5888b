"""sim_robot_node over real DDS: the node runs as its own process, this test process talks to it.

Each test starts ``python -m reach_rl_sim.sim_robot_node`` with a session-random
ROS_DOMAIN_ID and DDS discovery kept on localhost, publishes joint velocity commands
(through the safety filter, with gentle bounds so that scheduling stalls of a loaded test
machine stay far inside Franka's limits) and watches joint states, reflexes and reset.
"""
import time

import numpy as np
import pytest
from ros_harness import NodeProcess, TestNode, ros_context_fixture, test_node_name

from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from reach_rl_core.franka_model import FR3, READY_POSE, joint_names  # noqa: E402
from reach_rl_deploy.ros_qos import reliable  # noqa: E402
from reach_rl_core.filter_limits import FilterLimits  # noqa: E402
from reach_rl_core.safety_filter import FilterState, filter_step  # noqa: E402

pytestmark = pytest.mark.ros

COMMAND_TOPIC = "/joint_velocity_controller/commands"
NAMES = joint_names("fr3")
# 0.1 rad/s^2 and 10 rad/s^3 per message: a 50 ms stall of either process still reads as
# at most 5 rad/s^2 and 5000 rad/s^3 at the controller.
GENTLE = FilterLimits.from_joint_limits(FR3, accel_fraction=0.01, jerk_fraction=0.002)


ros_context = pytest.fixture(scope="module")(ros_context_fixture)


class Harness(TestNode):
    """This test's side: records what the sim publishes, sends commands, calls ~/reset."""

    def __init__(self, context, name):
        super().__init__(context, name)
        self.states = []  # (receive time [s, monotonic], JointState)
        self.reflexes = []
        self.pub = self.node.create_publisher(Float64MultiArray, COMMAND_TOPIC, 10)
        self.record(JointState, "/joint_states", 50, self.states)
        self.record(String, "/sim_robot/reflex", reliable(10, latched=True), self.reflexes,
                    stamp=False, keep=lambda msg: msg.data)

    def latest(self):
        with self.lock:
            return self.states[-1][1] if self.states else None

    def publish(self, values):
        self.pub.publish(Float64MultiArray(data=[float(v) for v in values]))

    def drive(self, goals_at, duration, state=None):
        """Publish filtered commands at 1 kHz for ``duration`` s; ``goals_at(t)`` gives the goal
        [rad/s] at time t [s]. Returns the final filter state and the integral of the
        published commands over time [rad]."""
        state = state or FilterState.at_rest()
        integral = np.zeros(7)
        start = time.monotonic()
        last = start
        next_send = start
        while True:
            now = time.monotonic()
            if now - start >= duration:
                break
            if now < next_send:
                time.sleep(next_send - now)
                continue
            integral += state.command * (now - last)  # the previous command held until now
            last = now
            msg_state = self.latest()
            q = np.array(msg_state.position) if msg_state else np.array(READY_POSE)
            state, _ = filter_step(GENTLE, state, goals_at(now - start), q)
            self.publish(state.command)
            next_send += GENTLE.dt
            if now - next_send > 0.05:  # fell far behind: do not send a burst
                next_send = now
        integral += state.command * (time.monotonic() - last)
        return state, integral

    def reset(self):
        return self.call(Trigger, "/sim_robot/reset", Trigger.Request())


@pytest.fixture
def sim(ros_context, request):
    process = NodeProcess("reach_rl_sim.sim_robot_node", [("robot", "fr3")])
    harness = Harness(ros_context, test_node_name(request))
    try:
        harness.wait_for(lambda: harness.states, 15.0, "the first JointState from sim_robot_node")
        yield harness
    finally:
        harness.close()
        process.stop()


def test_joint_states_follow_commanded_velocity(sim):
    first = sim.latest()
    assert tuple(first.name) == NAMES
    np.testing.assert_allclose(first.position, READY_POSE, atol=1e-12)
    count_before = len(sim.states)
    goal = np.array([0.05, 0.0, -0.04, 0.03, 0.0, 0.0, 0.05])
    t0 = time.monotonic()
    # 1 s toward the goal, then 1 s of zeros: the gentle filter's stop takes 520 messages, which
    # this test process sends at 1 kHz only on a quiet machine.
    state, integral = sim.drive(lambda t: goal if t < 1.0 else np.zeros(7), 2.0)
    assert np.all(state.command == 0.0)
    rate = (len(sim.states) - count_before) / (time.monotonic() - t0)
    time.sleep(0.1)  # the actuator lag settles
    last = sim.latest()
    assert sim.reflexes == []
    print("joint states arrived at %.0f Hz" % rate)  # a figure: bench/deploy_bench.py judges rates
    moved = np.array(last.position) - np.array(READY_POSE)
    print("displacement [rad] measured %s, commanded %s" % (np.round(moved, 5), np.round(integral, 5)))
    np.testing.assert_allclose(moved, integral, rtol=0.1, atol=2e-3)
    assert moved[0] > 0.03 and moved[2] < -0.02  # it really moved, in the commanded direction
    np.testing.assert_allclose(last.velocity, 0.0, atol=1e-6)


def test_step_command_reflexes_stops_and_resets(sim):
    sim.publish(np.zeros(7))
    time.sleep(0.05)
    step = np.zeros(7)
    step[3] = 1.0  # 1 rad/s in one message: 1000 rad/s^2, 1e6 rad/s^3
    sim.publish(step)
    sim.wait_for(lambda: sim.reflexes, 5.0, "a reflex after a 1 rad/s step")
    error = sim.reflexes[0]
    assert "fr3_joint4" in error
    assert "joint_jerk_limit_violation" in error or "joint_acceleration_limit_violation" in error
    # The arm stands still while in the reflex, whatever is commanded.
    time.sleep(0.05)
    held = np.array(sim.latest().position)
    sim.publish(step)
    time.sleep(0.3)
    latest = sim.latest()
    np.testing.assert_array_equal(latest.position, held)
    np.testing.assert_array_equal(latest.velocity, 0.0)
    assert len(sim.reflexes) == 1
    response = sim.reset()
    assert response.success and "fr3_joint4" in response.message
    # After the reset the arm moves again under gentle commands, with no new reflex.
    _, integral = sim.drive(lambda t: np.full(7, 0.03) if t < 0.4 else np.zeros(7), 0.8)
    time.sleep(0.1)
    assert sim.reflexes == [error]
    moved = np.array(sim.latest().position) - held
    assert np.all(moved > 0.3 * integral) and np.all(moved > 0.0)


def test_invalid_commands_reflex_with_clear_message(sim):
    sim.publish([0.0] * 6)
    sim.wait_for(lambda: sim.reflexes, 5.0, "a reflex after a 6-value command")
    assert "6 values, expected 7" in sim.reflexes[0]
    assert sim.reset().success
    assert sim.reset().message == "no reflex active"
    bad = np.zeros(7)
    bad[2] = np.nan
    sim.publish(bad)
    sim.wait_for(lambda: len(sim.reflexes) == 2, 5.0, "a reflex after a NaN command")
    assert "non-finite" in sim.reflexes[1] and "fr3_joint3" in sim.reflexes[1]
