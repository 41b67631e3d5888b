"""Targets without ROS: the refusals beside target_refusal (pose_refusal, type_mismatches), and
that a pose policy gets the target's quaternion, a point policy never one (Policy and
DeployController), on a pose policy built from the committed point policy (pose_policy.py)."""
import math

import numpy as np
import pytest
from pose_policy import POINT_POLICY, make_pose_policy

from reach_rl_core.filter_limits import ROS2_CONTROL, FilterLimits
from reach_rl_core.franka_model import FR3, READY_POSE
from reach_rl_core.orientation import matrix_to_quaternion, rotation_from_rpy
from reach_rl_deploy import deploy_controller as dc
from reach_rl_deploy.policy_runtime import Policy
from reach_rl_deploy.targets import (DOWN_CONE_MARGIN, Endpoint, Target, down_angle,
                                     pose_refusal, pose_target, target_refusal, type_mismatches)

BASE = "fr3_link0"
INSIDE = np.array([0.45, 0.2, 0.35])  # m, inside the committed policies' box
DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # pi about x: the TCP z axis straight down
LIMITS = FilterLimits.for_interface(FR3, ROS2_CONTROL, control_rate=50.0, command_hold=-1.0)


@pytest.fixture(scope="module")
def pose_policy(tmp_path_factory):
    return Policy(make_pose_policy(str(tmp_path_factory.mktemp("pose") / "pose.onnx")))


@pytest.fixture(scope="module")
def point_policy():
    return Policy(POINT_POLICY)


def rpy(roll, pitch, yaw):
    return matrix_to_quaternion(rotation_from_rpy(roll, pitch, yaw))


def test_down_angle_is_the_tcp_z_axis_from_straight_down():
    assert down_angle(DOWN) == pytest.approx(0.0, abs=1e-12)
    assert down_angle(rpy(0.0, math.pi, 1.3)) == pytest.approx(0.0, abs=1e-12)  # any yaw
    assert down_angle([0.0, 0.0, 0.0, 1.0]) == pytest.approx(math.pi)  # identity: z up
    assert down_angle(rpy(0.3, math.pi, 0.0)) == pytest.approx(0.3)
    assert down_angle(2.0 * DOWN) == pytest.approx(0.0, abs=1e-12)  # scale-free


def test_pose_target_is_normalised_with_w_positive():
    target = pose_target(INSIDE, [0.0, 0.0, 0.0, -1.0005])
    np.testing.assert_allclose(target.quaternion, [0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("case, frame, position, quaternion, expected", [
    ("other frame", "world", INSIDE, DOWN, "frame 'world', expected 'fr3_link0'"),
    ("nan position", BASE, [0.45, math.nan, 0.35], DOWN, "non-finite"),
    ("inf quaternion", BASE, INSIDE, [math.inf, 0, 0, 0], "non-finite"),
    ("nan quaternion", BASE, INSIDE, [math.nan, 0, 0, 0], "non-finite"),
    ("long quaternion", BASE, INSIDE, [1.0011, 0, 0, 0], "is not a unit quaternion"),
    ("short quaternion", BASE, INSIDE, [0.9989, 0, 0, 0], "is not a unit quaternion"),
    ("zero quaternion", BASE, INSIDE, [0, 0, 0, 0], "is not a unit quaternion"),
    ("outside the box", BASE, [1.5, 0.0, 0.3], DOWN, "outside the workspace"),
    ("tilted", BASE, INSIDE, rpy(0.1, math.pi, 0.0), "5.7 deg from straight down"),
    ("2D Goal Pose", BASE, [0.45, 0.2, 0.0], [0, 0, 0.6, 0.8],
     "z 0.15..0.60 m; the TCP z axis points 180.0 deg from straight down"),
])
def test_pose_refusals_say_why(pose_policy, case, frame, position, quaternion, expected):
    why = pose_refusal(frame, np.array(position, float), np.array(quaternion, float), BASE,
                       pose_policy.info)
    assert expected in why, (case, why)


@pytest.mark.parametrize("frame, quaternion", [
    ("", DOWN), ("/fr3_link0", DOWN), (BASE, 1.0009 * DOWN), (BASE, rpy(0.0, math.pi, -2.5)),
    (BASE, rpy(0.9 * DOWN_CONE_MARGIN, math.pi, 0.7))])
def test_usable_poses_are_taken(pose_policy, frame, quaternion):
    assert pose_refusal(frame, INSIDE, np.array(quaternion), BASE, pose_policy.info) == ""


def test_the_down_cone_is_the_trained_one_plus_the_margin(tmp_path):
    info = Policy(make_pose_policy(str(tmp_path / "cone.onnx"), down_cone=0.5)).info
    assert pose_refusal(BASE, INSIDE, rpy(0.5, math.pi, 0.0), BASE, info) == ""
    tilted = rpy(0.5 + 1.1 * DOWN_CONE_MARGIN, math.pi, 0.0)
    assert "at most 28.6 deg" in pose_refusal(BASE, INSIDE, tilted, BASE, info)


def test_point_refusals_are_unchanged(point_policy):
    info = point_policy.info
    assert target_refusal("", INSIDE, BASE, info) == ""
    assert "expected 'fr3_link0'" in target_refusal("world", INSIDE, BASE, info)
    assert "non-finite" in target_refusal(BASE, np.array([math.nan, 0, 0]), BASE, info)
    assert "outside the workspace" in target_refusal(BASE, np.array([1.5, 0, 0.3]), BASE, info)


def test_type_mismatches_name_each_new_publisher_of_the_other_type_once():
    point, pose = "geometry_msgs/msg/PointStamped", "geometry_msgs/msg/PoseStamped"
    seen = set()
    publishers = [Endpoint("/rviz", pose, (1,)), Endpoint("/clicker", point, (2,))]
    found = type_mismatches(publishers, "pose", "/reach_target", seen)
    assert found == ["this pose policy takes %s, but /clicker publishes %s on /reach_target, "
                     "which never reaches it: send poses (reach-rl-targets x,y,z,roll,pitch,yaw) "
                     "or deploy a point policy" % (pose, point)]
    assert type_mismatches(publishers, "pose", "/reach_target", seen) == []  # reported once
    again = publishers + [Endpoint("/clicker", point, (3,))]  # a new publisher of that node
    assert len(type_mismatches(again, "pose", "/reach_target", seen)) == 1
    found = type_mismatches(publishers, "point", "/goal_pose", set())
    assert len(found) == 1 and "/rviz publishes %s" % pose in found[0]


def test_a_pose_policy_gets_the_quaternion_and_a_point_policy_never_one(pose_policy,
                                                                        point_policy):
    q, zero = np.array(READY_POSE), np.zeros(7)
    expected = point_policy(q, zero, INSIDE, zero)
    np.testing.assert_array_equal(pose_policy(q, zero, INSIDE, zero, DOWN), expected)
    with pytest.raises(ValueError, match="pose policy: it takes a target orientation"):
        pose_policy(q, zero, INSIDE, zero)
    with pytest.raises(ValueError, match="point policy: it takes no target orientation"):
        point_policy(q, zero, INSIDE, zero, DOWN)


@pytest.mark.parametrize("kind", ["pose", "point"])
def test_the_controller_drives_only_the_kind_of_target_its_policy_takes(
        pose_policy, point_policy, kind):
    policy = pose_policy if kind == "pose" else point_policy
    right = pose_target(INSIDE, DOWN) if kind == "pose" else Target(np.asarray(INSIDE))
    wrong = Target(INSIDE) if kind == "pose" else pose_target(INSIDE, DOWN)
    sample = dc.JointSample(np.array(READY_POSE), np.zeros(7), received=0.0)
    for target, status in ((wrong, dc.NO_TARGET), (right, dc.OK)):
        ctrl = dc.DeployController(policy, LIMITS, state_timeout=0.02)
        commands = [ctrl.tick(sample, target, True, 0.0) for _ in range(5)]
        assert ctrl.status == status
        assert np.any(commands[-1]) == (status == dc.OK)
