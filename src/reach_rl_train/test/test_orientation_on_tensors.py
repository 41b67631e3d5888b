"""reach_rl_core's orientation math and TCP pose on torch tensors (registered by
reach_rl_train.torch_arrays) give what they give on numpy arrays, in the tensors' dtype."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reach_rl_core import franka_model as fm  # noqa: E402
from reach_rl_core import orientation as ori  # noqa: E402
from reach_rl_train import torch_arrays  # noqa: E402,F401  (registers torch.Tensor)


def random_q(n, seed):
    return np.random.default_rng(seed).uniform(fm.FR3.pos_min, fm.FR3.pos_max, size=(n, 7))


def random_rotations(n, seed):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return ori.quaternion_to_matrix(q / np.linalg.norm(q, axis=-1, keepdims=True))


def test_tcp_pose_numpy_and_torch_agree_in_batch():
    q = random_q(64, 0)
    position, rotation = fm.tcp_pose(torch.tensor(q))
    assert isinstance(position, torch.Tensor) and isinstance(rotation, torch.Tensor)
    expected_position, expected_rotation = fm.tcp_pose(q)
    np.testing.assert_allclose(position.numpy(), expected_position, atol=1e-12)
    np.testing.assert_allclose(rotation.numpy(), expected_rotation, atol=1e-12)
    position32, rotation32 = fm.tcp_pose(torch.tensor(q, dtype=torch.float32))
    assert position32.dtype == rotation32.dtype == torch.float32
    np.testing.assert_allclose(rotation32.double().numpy(), expected_rotation, atol=1e-5)


def test_features_and_angle_numpy_and_torch_agree():
    current, target = random_rotations(64, 1), random_rotations(64, 2)
    target[:8] = current[:8]  # zero error
    target[8:16] = current[8:16] @ np.diag([1.0, -1.0, -1.0])  # an error of pi
    tc, tt = torch.tensor(current), torch.tensor(target)
    features = ori.orientation_error_features(tc, tt)
    assert isinstance(features, torch.Tensor) and features.shape == (64, 6)
    np.testing.assert_allclose(features.numpy(), ori.orientation_error_features(current, target),
                               atol=1e-12)
    angle = ori.orientation_error_angle(tc, tt)
    assert angle.shape == (64,)
    np.testing.assert_allclose(angle.numpy(), ori.orientation_error_angle(current, target), atol=1e-12)
    np.testing.assert_allclose(angle[8:16].numpy(), np.pi, atol=1e-12)
    features32 = ori.orientation_error_features(tc.float(), tt.float())
    assert features32.dtype == torch.float32


def test_quaternions_and_rpy_numpy_and_torch_agree():
    rotations = random_rotations(64, 3)
    rotations[0] = np.diag([1.0, -1.0, -1.0])  # w = 0
    quaternions = ori.matrix_to_quaternion(torch.tensor(rotations))
    np.testing.assert_allclose(quaternions.numpy(), ori.matrix_to_quaternion(rotations), atol=1e-12)
    np.testing.assert_allclose(ori.quaternion_to_matrix(quaternions).numpy(), rotations, atol=1e-12)
    np.testing.assert_allclose(ori.quaternion_norm_error(quaternions).numpy(), 0.0, atol=1e-12)
    rpy = np.random.default_rng(4).uniform(-np.pi, np.pi, (3, 16))
    np.testing.assert_allclose(ori.rotation_from_rpy(*torch.tensor(rpy)).numpy(),
                               ori.rotation_from_rpy(*rpy), atol=1e-12)


def test_features_have_finite_gradients_at_zero_error_and_at_pi():
    q = torch.tensor(random_q(16, 5), requires_grad=True)
    _, rotation = fm.tcp_pose(q)
    target = rotation.detach().clone()
    target[8:] = target[8:] @ torch.tensor(np.diag([1.0, -1.0, -1.0]))
    ori.orientation_error_features(rotation, target).square().sum().backward()
    assert torch.isfinite(q.grad).all()
