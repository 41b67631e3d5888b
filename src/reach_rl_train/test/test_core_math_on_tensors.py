"""reach_rl_core's shared math on torch tensors (registered by reach_rl_train.torch_arrays) gives
what it gives on numpy arrays: kinematics, velocity bounds, limit distance, self-collision
distance (with finite gradients) and actuator lag."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reach_rl_core import franka_model as fm  # noqa: E402
from reach_rl_core import self_collision as sc  # noqa: E402
from reach_rl_core.actuator_lag import lag_step  # noqa: E402
from reach_rl_train import torch_arrays  # noqa: E402


def random_q(n, seed):
    return np.random.default_rng(seed).uniform(fm.FR3.pos_min, fm.FR3.pos_max, size=(n, 7))


def test_tcp_position_numpy_and_torch_agree_in_batch():
    q = random_q(64, 0)
    np.testing.assert_allclose(fm.tcp_position(torch.tensor(q)).numpy(), fm.tcp_position(q),
                               atol=1e-12)


def test_the_gpus_kinematics_by_rows_agree_with_the_link_matrices(monkeypatch):
    # torch_arrays.tcp_position takes this form for CUDA tensors; it is plain torch, so it runs
    # here on the CPU once the device check is bypassed.
    q = random_q(64, 1)
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        tensor = torch.tensor(q, dtype=dtype)
        monkeypatch.setattr(torch.Tensor, "device", property(lambda self: torch.device("cuda")))
        got = torch_arrays.tcp_position(tensor)
        monkeypatch.undo()
        assert got.dtype == dtype and got.shape == (64, 3)
        np.testing.assert_allclose(got.double().numpy(), fm.tcp_position(q), atol=tolerance)


def test_velocity_bounds_and_limit_distance_match_numpy():
    qs = random_q(32, 1)
    for a, b in zip(fm.velocity_bounds(fm.FR3, torch.tensor(qs)), fm.velocity_bounds(fm.FR3, qs)):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-12)
    limits = fm.FR3
    t = fm.limit_distance(torch.tensor(qs), limits.pos_min, limits.pos_max)
    np.testing.assert_allclose(t.numpy(), fm.limit_distance(qs, limits.pos_min, limits.pos_max))


def test_self_collision_numpy_and_torch_agree_with_finite_gradients():
    q = random_q(200, 2)
    tq = torch.tensor(q, requires_grad=True)
    separation = sc.link_separation(tq)
    assert isinstance(separation, torch.Tensor) and separation.shape == (200,)
    np.testing.assert_allclose(separation.detach().numpy(), sc.link_separation(q), atol=1e-12)
    separation.sum().backward()
    assert torch.isfinite(tq.grad).all()


def test_actuator_lag_torch_matches_numpy_per_arm():
    v = np.random.default_rng(0).uniform(-1, 1, (3, 7))
    command = np.random.default_rng(1).uniform(-1, 1, (3, 7))
    tau = np.array([0.0, 0.01, 0.03])
    expected = [lag_step(v[i], command[i], tau[i], 0.02) for i in range(3)]
    velocity, displacement = lag_step(torch.tensor(v), torch.tensor(command),
                                      torch.tensor(tau).unsqueeze(-1), 0.02)
    np.testing.assert_allclose(velocity.numpy(), [e[0] for e in expected], atol=1e-12)
    np.testing.assert_allclose(displacement.numpy(), [e[1] for e in expected], atol=1e-12)


def test_an_unregistered_array_type_is_refused_saying_what_to_do():
    class Foreign:
        pass

    with pytest.raises(TypeError, match="registered by importing reach_rl_train"):
        fm.array_namespace(Foreign())
