"""Orientation targets: quaternion <-> matrix, the continuous error features, the geodesic angle,
sampled "down" targets and the TCP pose of the kinematics."""
import numpy as np
import pytest

from reach_rl_core import franka_model as fm
from reach_rl_core import orientation as ori


def random_quaternions(n, seed):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def axis_angle(axis, angle):
    """Rodrigues' rotation matrix, the reference for known rotations."""
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


def assert_rotations(matrices, atol=1e-12):
    eye = np.broadcast_to(np.eye(3), matrices.shape)
    np.testing.assert_allclose(matrices @ matrices.swapaxes(-1, -2), eye, atol=atol)
    np.testing.assert_allclose(np.linalg.det(matrices), 1.0, atol=atol)


def test_quaternion_to_matrix_of_known_rotations_and_scale_free():
    half = 0.35
    np.testing.assert_allclose(ori.quaternion_to_matrix(np.array([0.0, 0.0, np.sin(half), np.cos(half)])),
                               axis_angle([0, 0, 1], 2 * half), atol=1e-15)
    np.testing.assert_allclose(ori.quaternion_to_matrix(np.array([1.0, 0.0, 0.0, 0.0])),
                               np.diag([1.0, -1.0, -1.0]), atol=1e-15)
    q = random_quaternions(100, 0)
    assert_rotations(ori.quaternion_to_matrix(q))
    np.testing.assert_allclose(ori.quaternion_to_matrix(3.0 * q), ori.quaternion_to_matrix(q), atol=1e-14)


def test_quaternion_matrix_round_trips_at_every_angle():
    q = random_quaternions(1000, 1)
    back = ori.matrix_to_quaternion(ori.quaternion_to_matrix(q))
    np.testing.assert_allclose(back, q * np.sign(q[:, 3:]), atol=1e-12)  # w >= 0
    # Rotations by pi and near it, about axes whose components may cancel in a naive formula.
    axes = np.random.default_rng(2).normal(size=(200, 3))
    angles = np.concatenate([np.full(100, np.pi), np.pi - np.logspace(-12, -1, 100)])
    matrices = np.array([axis_angle(a, t) for a, t in zip(axes, angles)])
    again = ori.quaternion_to_matrix(ori.matrix_to_quaternion(matrices))
    np.testing.assert_allclose(again, matrices, atol=1e-12)
    assert np.all(ori.quaternion_norm_error(ori.matrix_to_quaternion(matrices)) < 1e-12)


def test_quaternion_norm_error():
    np.testing.assert_allclose(ori.quaternion_norm_error(np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, -1.1],
                                                                  [0.0, 0.0, 0.0, 0.0]])),
                               [0.0, 0.1, 1.0], atol=1e-15)


def test_q_and_minus_q_give_the_same_matrix_and_features():
    q, target = random_quaternions(50, 3), ori.quaternion_to_matrix(random_quaternions(50, 4))
    np.testing.assert_array_equal(ori.quaternion_to_matrix(-q), ori.quaternion_to_matrix(q))
    np.testing.assert_array_equal(ori.orientation_error_features(ori.quaternion_to_matrix(-q), target),
                                  ori.orientation_error_features(ori.quaternion_to_matrix(q), target))


def test_features_are_zero_on_target_and_determine_the_error_in_the_hand_frame():
    current = ori.quaternion_to_matrix(random_quaternions(100, 5))
    target = ori.quaternion_to_matrix(random_quaternions(100, 6))
    np.testing.assert_allclose(ori.orientation_error_features(current, current), 0.0, atol=1e-14)
    features = ori.orientation_error_features(current, target)
    assert features.shape == (100, 6) and np.all(np.abs(features) <= 2.0)
    assert np.all(np.linalg.norm(features, axis=-1) > 1e-3)
    # The two columns (plus identity) and their cross product are current^T target.
    x_axis, y_axis = features[:, :3] + [1, 0, 0], features[:, 3:] + [0, 1, 0]
    rebuilt = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], -1)
    np.testing.assert_allclose(rebuilt, current.swapaxes(-1, -2) @ target, atol=1e-12)
    # Expressed in the hand frame: turning the base (both rotations alike) changes nothing.
    base = ori.quaternion_to_matrix(random_quaternions(1, 7))[0]
    np.testing.assert_allclose(ori.orientation_error_features(base @ current, base @ target), features,
                               atol=1e-12)


def test_features_are_continuous_across_an_error_of_pi():
    current = ori.quaternion_to_matrix(random_quaternions(1, 8))[0]
    for axis in ([0, 0, 1], [1, -2, 0.5], [0.3, 0.3, -1]):
        for eps in (1e-3, 1e-6):
            below = ori.orientation_error_features(current, current @ axis_angle(axis, np.pi - eps))
            above = ori.orientation_error_features(current, current @ axis_angle(axis, np.pi + eps))
            assert np.linalg.norm(below - above) < 4 * eps
    # And everywhere: a small turn of the target gives a small change.
    target = ori.quaternion_to_matrix(random_quaternions(200, 9))
    nudge = np.array([axis_angle(a, 1e-4) for a in np.random.default_rng(10).normal(size=(200, 3))])
    change = ori.orientation_error_features(current, target @ nudge) - ori.orientation_error_features(current, target)
    assert np.all(np.linalg.norm(change, axis=-1) < 2 * 1e-4)


def test_angle_is_zero_on_target_and_the_rotation_angle_otherwise():
    current = ori.quaternion_to_matrix(random_quaternions(1, 11))[0]
    assert ori.orientation_error_angle(current, current) < 1e-7
    angles = np.concatenate([[1e-9, 1e-4, ori.ORIENTATION_TOLERANCE, 1.0, 2.5, np.pi - 1e-7], [np.pi]])
    for axis in ([0, 0, 1], [1, 2, 3], [-1, 0.1, 0]):
        for angle in angles:
            target = current @ axis_angle(axis, angle)
            got = ori.orientation_error_angle(current, target)
            assert 0.0 <= got <= np.pi
            assert got == pytest.approx(angle, rel=1e-7, abs=1e-12)
            assert ori.orientation_error_angle(target, current) == pytest.approx(got, abs=1e-12)
    # More than pi the other way round is less than pi this way.
    assert ori.orientation_error_angle(current, current @ axis_angle([0, 1, 0], 4.0)) == pytest.approx(
        2 * np.pi - 4.0, abs=1e-12)
    assert ori.ORIENTATION_TOLERANCE == pytest.approx(0.0873, abs=5e-5)


def tf2_set_rpy(roll, pitch, yaw):
    """tf2::Quaternion::setRPY's formula, (x, y, z, w)."""
    cr, sr, cp, sp, cy, sy = (f(v / 2) for v in (roll, pitch, yaw) for f in (np.cos, np.sin))
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])


def test_rotation_from_rpy_matches_tf2_set_rpy():
    for rpy in ((0.0, np.pi, 0.3), (0.1, -0.4, 2.0), (-2.0, 1.2, -3.0)):
        np.testing.assert_allclose(ori.rotation_from_rpy(*rpy), ori.quaternion_to_matrix(tf2_set_rpy(*rpy)),
                                   atol=1e-15)
    yaws = np.linspace(-np.pi, np.pi, 9)
    down = ori.rotation_from_rpy(0.0, np.pi, yaws)
    assert down.shape == (9, 3, 3)
    np.testing.assert_allclose(down[:, :, 2], np.broadcast_to([0.0, 0.0, -1.0], (9, 3)), atol=1e-15)


def test_down_orientations_point_down_with_yaw_over_the_whole_circle():
    samples = ori.sample_down_orientations(ori.numpy_uniform(np.random.default_rng(12)), 4000)
    assert samples.shape == (4000, 3, 3)
    assert_rotations(samples)
    np.testing.assert_allclose(samples[:, :, 2], np.broadcast_to([0.0, 0.0, -1.0], (4000, 3)), atol=1e-15)
    yaw = np.arctan2(-samples[:, 1, 0], -samples[:, 0, 0])  # roll 0, pitch pi: x axis = -(cos, sin, 0)
    counts, _ = np.histogram(yaw, bins=8, range=(-np.pi, np.pi))
    assert np.all(np.abs(counts - 500) < 100)


def test_down_orientations_within_a_cone_fill_it_uniformly():
    cone = 0.4
    samples = ori.sample_down_orientations(ori.numpy_uniform(np.random.default_rng(13)), 4000,
                                           cone=cone)
    assert_rotations(samples)
    tilt = np.arccos(np.clip(-samples[:, 2, 2], -1.0, 1.0))
    assert tilt.max() <= cone + 1e-12 and tilt.max() > cone - 0.02
    # Uniform over the cap's area: P(tilt < cone / 2) = (1 - cos(cone / 2)) / (1 - cos(cone)).
    expected = (1 - np.cos(cone / 2)) / (1 - np.cos(cone))
    assert np.mean(tilt < cone / 2) == pytest.approx(expected, abs=0.03)
    heading = np.arctan2(samples[:, 1, 2], samples[:, 0, 2])
    counts, _ = np.histogram(heading, bins=8, range=(-np.pi, np.pi))
    assert np.all(counts > 350)
    with pytest.raises(ValueError, match="cone"):
        ori.sample_down_orientations(ori.numpy_uniform(np.random.default_rng(0)), 3, cone=-0.1)


def reference_tcp_frame(q):
    """franka_description's chain: DH links, fr3_joint8 (0.107 m along z), fr3_hand_joint (-pi/4
    about z), fr3_hand_tcp_joint (0.1034 m along z)."""
    transform = np.eye(4)
    for i, (a, d, alpha) in enumerate(fm.DH_TABLE):
        transform = transform @ fm._dh_transform(np, a, d, alpha, np.asarray(q[i]))
    flange, hand, tcp = np.eye(4), np.eye(4), np.eye(4)
    flange[2, 3], tcp[2, 3] = 0.107, 0.1034
    hand[:3, :3] = axis_angle([0, 0, 1], -np.pi / 4)
    return transform @ flange @ hand @ tcp


def test_tcp_pose_is_the_hand_tcp_frame_and_agrees_with_tcp_position():
    q = np.random.default_rng(14).uniform(fm.FR3.pos_min, fm.FR3.pos_max, size=(200, 7))
    position, rotation = fm.tcp_pose(q)
    assert position.shape == (200, 3) and rotation.shape == (200, 3, 3)
    assert_rotations(rotation)
    np.testing.assert_allclose(position, fm.tcp_position(q), atol=1e-14)
    for k in range(0, 200, 20):
        reference = reference_tcp_frame(q[k])
        np.testing.assert_allclose(rotation[k], reference[:3, :3], atol=1e-12)
        np.testing.assert_allclose(position[k], reference[:3, 3], atol=1e-12)


def test_the_ready_pose_points_the_hand_down():
    position, rotation = fm.tcp_pose(np.array(fm.READY_POSE))
    np.testing.assert_allclose(rotation[:, 2], [0.0, 0.0, -1.0], atol=1e-12)
    # Franka's O_T_EE at the ready pose: x along base x, y along -base y (the hand's -pi/4 included).
    np.testing.assert_allclose(rotation, np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    np.testing.assert_allclose(position, fm.tcp_position(np.array(fm.READY_POSE)), atol=1e-15)
