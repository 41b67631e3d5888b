"""reach-rl-targets' pure parts: target parsing (points and x,y,z,roll,pitch,yaw poses), held-out
draws from a box (and a down cone), the TCP and orientation errors, the result line."""
import math

import numpy as np
import pytest

from pose_policy import make_pose_policy

from reach_rl_core.franka_model import READY_POSE, tcp_pose, tcp_position
from reach_rl_core.orientation import (matrix_to_quaternion, quaternion_to_matrix,
                                       rotation_from_rpy)
from reach_rl_deploy import target_runner as tr
from reach_rl_deploy.targets import down_angle


def test_parse_target_takes_three_finite_metres_or_a_pose_and_says_what_is_wrong():
    assert tr.parse_target("0.45,0.2,-0.1") == (0.45, 0.2, -0.1)
    assert tr.parse_target("0.45,0.2,0.3,0,3.1416,-1") == (0.45, 0.2, 0.3, 0.0, 3.1416, -1.0)
    for bad in ("0.45,0.2", "a,b,c", "0.4,nan,0.3", "1,2,3,4", "1,2,3,0,0,nan", "1,2,3,4,5,6,7"):
        with pytest.raises(ValueError, match="must be x,y,z in metres"):
            tr.parse_target(bad)


def test_a_pose_is_sent_as_tf2s_set_rpy_quaternion():
    point = tr.target_from_values((0.45, 0.2, 0.3))
    assert point.quaternion is None
    pose = tr.target_from_values((0.45, 0.2, 0.3, 0.1, -0.2, 2.5))
    np.testing.assert_allclose(quaternion_to_matrix(pose.quaternion),
                               rotation_from_rpy(0.1, -0.2, 2.5), atol=1e-12)
    assert pose.quaternion[3] >= 0.0 and np.linalg.norm(pose.quaternion) == pytest.approx(1.0)


def test_parse_args_refuses_a_mix_of_points_and_poses(capsys):
    with pytest.raises(SystemExit):
        tr.parse_args(["0.45,0.2,0.3", "0.45,0.2,0.3,0,3.1416,0"])
    assert "mix points (x,y,z) and poses" in capsys.readouterr().err
    args = tr.parse_args(["0.45,0.2,0.3,0,3.1416,0", "--angle-tolerance", "10"])
    assert args.angle_tolerance == pytest.approx(math.radians(10.0))


def test_random_targets_of_a_pose_policy_are_poses_in_its_cone(tmp_path):
    path = make_pose_policy(str(tmp_path / "pose.onnx"), down_cone=0.3)
    targets = tr.random_policy_targets(50, 7, path)
    positions = tr.random_targets(50, 7, ((0.3, -0.35, 0.15), (0.6, 0.35, 0.6)))
    np.testing.assert_allclose([t.position for t in targets], positions)  # as a point run's
    angles = [down_angle(t.quaternion) for t in targets]
    assert max(angles) <= 0.3 + 1e-9 and max(angles) > 0.15


def test_orientation_error_is_the_angle_from_the_tcp_frame():
    q = np.array(READY_POSE)
    rotation = tcp_pose(q)[1]
    assert tr.orientation_error(q, matrix_to_quaternion(rotation)) == pytest.approx(0.0, abs=1e-6)
    turned = rotation @ rotation_from_rpy(0.0, 0.0, 0.3)  # 0.3 rad about the TCP's own z
    assert tr.orientation_error(q, matrix_to_quaternion(turned)) == pytest.approx(0.3)


def test_random_targets_are_reproducible_and_inside_the_box():
    box = ((0.3, -0.35, 0.15), (0.6, 0.35, 0.6))
    targets = tr.random_targets(200, 12345, box)
    assert targets == tr.random_targets(200, 12345, box)
    assert targets != tr.random_targets(200, 1, box)
    points = np.array(targets)
    assert np.all(points >= box[0]) and np.all(points <= box[1])


def test_tcp_error_is_the_distance_from_the_forward_kinematics():
    tcp = tcp_position(np.array(READY_POSE))
    assert tr.tcp_error(READY_POSE, tcp) == pytest.approx(0.0, abs=1e-12)
    assert tr.tcp_error(READY_POSE, tcp + [0.0, 0.003, 0.004]) == pytest.approx(0.005)


def results(errors, times, angles=None):
    angles = angles or [math.nan] * len(errors)
    return [tr.Result(e, a, t) for e, a, t in zip(errors, angles, times)]


def test_summary_counts_medians_never_and_the_closest_joint():
    limit = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.25, 0.4])
    line = tr.summary(results([0.002, 0.004, 0.03], [0.5, 0.7, math.nan]), 0.01, limit, [])
    assert line.startswith("2/3 targets within 10 mm | median final error 4.0 mm |")
    assert "median time to 1 cm 0.60 s" in line and "0.250 rad (joint 6)" in line
    assert line.endswith("reflexes: none")
    line = tr.summary(results([0.03], [math.nan]), 0.01, limit, ["reflex: joint_position_limits"])
    assert "median time to 1 cm never" in line and line.endswith("joint_position_limits")


def test_summary_of_poses_counts_the_orientation_error_too():
    limit = np.full(7, 0.5)
    poses = results([0.002, 0.004, 0.003], [0.5, 0.7, 0.6], [0.01, 0.2, 0.03])
    line = tr.summary(poses, 0.01, limit, [], angle_tolerance=math.radians(5.0))
    assert line.startswith("2/3 targets within 10 mm and 5 deg | median final error 3.0 mm, "
                           "1.7 deg |")
