"""deploy_node's topic path over real DDS driving the kinematic simulated Franka
(reach_rl_sim.sim_robot_node, its own process, behind its joint_trajectory_controller model):
the node runs as its own process (interface ros2_control); the test records every trajectory.

With the session's policy (policy_fixtures.reach_policy: trained by train_node as its own
process, the trainer as its child) the first test is the whole chain end to end: train node ->
policy file -> deploy node + simulated Franka -> three targets within 1 cm, no reflex.

The trajectories a test records are replayed through the joint_trajectory_controller model at
1 kHz (controller_replay) and that command stream is judged against the FR3's limits, besides
the simulated Franka's own judgement of the stream it ran (a reflex on /sim_robot/reflex).
reach_rl_deploy's own tests feed the node joint states of their own.
"""
import contextlib
import time

import numpy as np
import pytest
from controller_replay import judge
from deploy_operator import assert_brought_to_rest, deploy_node, operator_fixture
from pose_targets import POSES, down_quaternion, pose_message
from ros_harness import NodeProcess, ros_context_fixture

from geometry_msgs.msg import PoseStamped  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from reach_rl_core.orientation import ORIENTATION_TOLERANCE  # noqa: E402
from reach_rl_deploy.target_runner import orientation_error, tcp_error  # noqa: E402
from reach_rl_sim.trajectory_topic import seconds  # noqa: E402

pytestmark = pytest.mark.ros

TARGETS = [(0.45, 0.20, 0.35), (0.50, -0.20, 0.50), (0.35, 0.05, 0.25)]
AT_REST = 1e-3  # rad/s: a joint slower than this rests (the P term closes the last micro-radians)

ros_context = pytest.fixture(scope="module")(ros_context_fixture)
operator = pytest.fixture(operator_fixture)


@contextlib.contextmanager
def deploy_on_sim(operator, policy, **params):
    """deploy_node driving sim_robot_node, both stopped after. Joint states at 250 Hz, not every
    1 ms cycle as franka_ros2 publishes them: the node reads one per 20 ms policy tick, and this
    test's own process records them in Python."""
    sim = NodeProcess("reach_rl_sim.sim_robot_node", [("robot", "fr3"), ("joint_state_rate", 250.0)])
    node = deploy_node(policy, **params)
    try:
        operator.wait_for(lambda: operator.states, 20.0, "joint states from the simulated Franka")
        yield node, sim
    finally:
        node.stop()
        sim.stop()


def reach_each(operator, targets):
    """Send each target in turn; assert the TCP ends within 1 cm of it [m, base frame]."""
    for target in targets:
        operator.send_target(target)
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            time.sleep(0.02)
            if np.linalg.norm(operator.tcp() - target) < 0.005:
                break
        time.sleep(0.5)  # settle, then judge the error
        error = np.linalg.norm(operator.tcp() - target)
        print("target %s: TCP error %.1f mm" % (target, 1000 * error))
        assert error < 0.01, "target %s missed by %.1f mm" % (target, 1000 * error)


def assert_arm_rests(operator, timeout=5.0):
    """The simulated Franka's joint states come to rest."""
    operator.wait_for(lambda: np.abs(operator.latest_state().velocity).max() < AT_REST, timeout,
                      "the simulated arm at rest")


@pytest.mark.slow
def test_reaches_three_targets_then_stops_when_joint_states_stop(operator, reach_policy):
    """Deploy node + simulated Franka: three successive targets within 1 cm, no reflex; when the
    robot's joint states stop while the arm moves, the trajectories bring it to rest."""
    with deploy_on_sim(operator, reach_policy) as (node, _):
        reach_each(operator, TARGETS)
        assert operator.reflexes == [], operator.reflexes
        operator.send_target((0.55, 0.25, 0.45))
        operator.wait_for_motion("motion toward the fourth target")
        time.sleep(0.2)
        operator.call(SetBool, "/sim_robot/hold_joint_states", SetBool.Request(data=True))
        node.wait_for_line("stale joint state", 5.0)
        operator.wait_until_quiet("no more trajectories after the joint states stopped")
        with operator.lock:
            last_state_sent = operator.states_sent[-1]
        assert_brought_to_rest(operator, last_state_sent, judge)
        # The simulated arm rested all along since: its first state after the hold says so.
        count = len(operator.states)
        operator.call(SetBool, "/sim_robot/hold_joint_states", SetBool.Request(data=False))
        operator.wait_for(lambda: len(operator.states) > count, 5.0, "joint states again")
        with operator.lock:
            resumed = operator.states[count][1]
        assert np.abs(resumed.velocity).max() < AT_REST, resumed.velocity
        assert operator.reflexes == [], operator.reflexes


def test_a_pose_policy_reaches_three_poses(operator, reach_pose_policy):
    """The topic path with a pose policy: PoseStamped targets (on a topic of their own, this
    process's node publishes PointStamped on /reach_target), each within 1 cm and 5 deg."""
    topic = "/reach_pose"
    with deploy_on_sim(operator, reach_pose_policy, target_topic=topic) as (node, _):
        publisher = operator.node.create_publisher(PoseStamped, topic, 10)
        operator.wait_for(lambda: publisher.get_subscription_count() > 0, 20.0,
                          "the deploy node's pose subscription")
        errors = []
        for x, y, z, yaw in POSES:
            quaternion = down_quaternion(yaw)
            end = time.monotonic() + 4.0
            while time.monotonic() < end:  # held as in training
                publisher.publish(pose_message((x, y, z), quaternion))
                time.sleep(0.05)
            q = operator.latest_state().position
            errors.append((tcp_error(q, (x, y, z)), orientation_error(q, quaternion)))
        operator.node.destroy_publisher(publisher)
    position, angle = np.array(errors).T
    assert position.max() < 0.01 and angle.max() < ORIENTATION_TOLERANCE, (
        "final errors %s mm, %s deg" % (np.round(1000 * position, 1), np.round(np.degrees(angle), 1)))
    assert operator.reflexes == [], operator.reflexes


def test_enable_service_and_sigint_bring_the_arm_to_rest(operator, reach_policy):
    with deploy_on_sim(operator, reach_policy, autostart=False) as (node, sim):
        node.wait_for_line("watchdog: disabled", 20.0)
        operator.send_target(TARGETS[1])
        time.sleep(0.3)
        assert not operator.moved(), "moved before ~/enable"
        assert operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True)).success
        operator.wait_for_motion("motion after ~/enable true")
        time.sleep(0.2)
        disabled_at = time.time()
        operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=False))
        operator.wait_until_quiet("no more trajectories after ~/enable false")
        assert_brought_to_rest(operator, disabled_at, judge)
        assert_arm_rests(operator)
        operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=True))
        operator.wait_for_motion("motion after ~/enable true again")
        time.sleep(0.2)
        interrupted_at = time.time()
        assert node.interrupt(10.0) == 0
        exited_at = time.time()
        assert "stopped, zeros published" in node.output
        # The node exits once the reference of its last trajectory rests, not before.
        with operator.lock:
            last = operator.trajectories[-1][1]
        end = seconds(last.header.stamp) + seconds(last.points[-1].time_from_start)
        assert end < exited_at, "exited %.3f s before its last trajectory ends" % (end - exited_at)
        assert_brought_to_rest(operator, interrupted_at, judge)
        assert_arm_rests(operator)
        assert operator.reflexes == [], operator.reflexes
