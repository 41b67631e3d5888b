"""deploy_node with a pose policy over real DDS (interface ros2_control, its own process, fed by
joint states this test publishes, as test_deploy_node.py): it takes geometry_msgs/PoseStamped
targets, refuses bad ones and a PointStamped publisher on its topic, saying why, without
motion, moves the arm to a valid pose, and stops when a PointStamped publisher appears. The
pose policy is the committed point policy with a target_quat input that changes nothing
(pose_policy.py)."""
import time

import pytest
from deploy_operator import MOVING, StatePublisher, deploy_node, operator_fixture
from pose_policy import make_pose_policy
from pose_targets import pose_message
from ros_harness import ros_context_fixture

import rclpy  # noqa: E402
from geometry_msgs.msg import PointStamped, PoseStamped  # noqa: E402

from reach_rl_core.franka_model import READY_POSE  # noqa: E402

pytestmark = pytest.mark.ros

# The operator (deploy_operator) publishes PointStamped on /reach_target; one DDS participant
# takes one type per topic name, so the pose node listens on a topic of its own.
TOPIC = "/pose_target"
POSITION = (0.45, 0.20, 0.35)  # m, base frame, inside the policy's box
DOWN = (1.0, 0.0, 0.0, 0.0)  # (x, y, z, w): pi about x, the TCP z axis straight down

ros_context = pytest.fixture(scope="module")(ros_context_fixture)
operator = pytest.fixture(operator_fixture)


@pytest.fixture(scope="module")
def pose_policy(tmp_path_factory):
    return make_pose_policy(str(tmp_path_factory.mktemp("pose") / "pose.onnx"))


@pytest.fixture
def pose_node(operator, pose_policy):
    """The deploy node running the pose policy on :data:`TOPIC`, the arm at the ready pose;
    yields (node, send), ``send(position, quaternion)`` publishing a PoseStamped."""
    node = deploy_node(pose_policy, target_topic=TOPIC)
    states = StatePublisher(operator, READY_POSE)
    publisher = operator.node.create_publisher(PoseStamped, TOPIC, 10)

    def send(position, quaternion, frame="fr3_link0"):
        operator.wait_for(lambda: publisher.get_subscription_count() > 0, 20.0,
                          "the deploy node's pose subscription")
        publisher.publish(pose_message(position, quaternion, frame))

    try:
        node.wait_for_line("pose targets (geometry_msgs/msg/PoseStamped) on %s" % TOPIC, 20.0)
        yield node, send
    finally:
        states.stop()
        node.stop()
        operator.node.destroy_publisher(publisher)


def send_point_from_another_participant(position):
    """Publish a PointStamped on :data:`TOPIC` from a context of its own (this process's main
    one publishes PoseStamped there) until the deploy node saw the publisher; returns a closer."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("point_sender", context=context)
    publisher = node.create_publisher(PointStamped, TOPIC, 10)
    msg = PointStamped()
    msg.header.frame_id = "fr3_link0"
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in position)
    publisher.publish(msg)

    def close():
        node.destroy_node()
        rclpy.try_shutdown(context=context)

    return close


def test_bad_poses_and_a_point_are_refused_without_motion(operator, pose_node):
    node, send = pose_node
    node.wait_for_line("watchdog: no target", 20.0)
    send(POSITION, (0.0, 1.0, 0.0, 0.1))  # length 1.005
    node.wait_for_line("is not a unit quaternion: its length is off 1 by 0.005", 10.0)
    send((0.45, 0.20, 0.0), (0.0, 0.0, 0.6, 0.8))  # RViz's 2D Goal Pose: z = 0, z axis up
    node.wait_for_line("the TCP z axis points 180.0 deg from straight down", 10.0)
    send(POSITION, (float("nan"), 0.0, 0.0, 1.0))
    node.wait_for_line("non-finite position", 10.0)
    close = send_point_from_another_participant(POSITION)
    try:
        node.wait_for_line("this pose policy takes geometry_msgs/msg/PoseStamped, but "
                           "/point_sender publishes geometry_msgs/msg/PointStamped on %s" % TOPIC,
                           5.0)
    finally:
        close()
    time.sleep(0.3)
    assert not any("target (" in line for line in node.lines), "a refused target was taken"
    assert not operator.moved(), "the arm moved toward a refused target"


def test_a_valid_pose_moves_the_arm_until_a_point_publisher_appears(operator, pose_node):
    node, send = pose_node
    node.wait_for_line("watchdog: no target", 20.0)
    send(POSITION, DOWN)
    node.wait_for_line("target (0.450, 0.200, 0.350) m, orientation (1.000, 0.000, 0.000, 0.000)",
                       10.0)
    operator.wait_for_motion("the arm commanded toward the pose", speed=MOVING)
    close = send_point_from_another_participant(POSITION)
    try:
        node.wait_for_line("publishes geometry_msgs/msg/PointStamped", 5.0)
        operator.wait_for(lambda: sum("watchdog: no target" in line for line in node.lines) == 2,
                          5.0, "the target dropped (zero goal)")
        operator.wait_until_quiet("the arm brought to rest after the refusal")
    finally:
        close()
