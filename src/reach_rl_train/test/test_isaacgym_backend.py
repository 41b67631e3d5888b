"""The Isaac Gym backend's pure parts: its tensor bookkeeping on plain torch (no Isaac Gym needed)
and the error without Isaac Gym (IsaacGymArm itself: test_isaacgym_arm.py)."""
import os
import subprocess
import sys
from importlib.util import find_spec

import pytest

torch = pytest.importorskip("torch")

from reach_rl_core.actuator_lag import lag_step  # noqa: E402
from reach_rl_core import franka_model as fm  # noqa: E402
from reach_rl_train import isaacgym_backend as ig  # noqa: E402
from reach_rl_train.arm_sim import TorchArmSim  # noqa: E402
from fake_isaacgym import flange_position  # noqa: E402
from source_tree import source_env as _env  # noqa: E402

ISAACGYM_INSTALLED = find_spec("isaacgym") is not None




# -- import hygiene --------------------------------------------------------------------------
def test_module_imports_without_isaacgym_or_torch():
    # Isaac Gym must load before torch, so importing the backend module must load neither.
    code = ("import sys, reach_rl_train.isaacgym_backend as m; "
            "print(sorted(k for k in ('torch', 'isaacgym') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_constructing_without_isaacgym_raises_the_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "isaacgym", None)  # as if not installed, even where it is
    with pytest.raises(ig.IsaacGymMissingError) as info:
        ig.IsaacGymArm(4, fm.joint_limits("fr3"), "cpu", 0.02)
    assert str(info.value) == ig.MISSING_MESSAGE
    assert "Isaac Gym Preview 4 (Python 3.6-3.8)" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_reach_task_with_backend_isaacgym_raises_the_clear_error(monkeypatch):
    from reach_rl_train.config import TrainConfig
    from reach_rl_train.reach_task import ReachTask

    monkeypatch.setitem(sys.modules, "isaacgym", None)
    cfg = TrainConfig()
    cfg.task.backend = "isaacgym"
    with pytest.raises(ig.IsaacGymMissingError, match="needs Isaac Gym Preview 4"):
        ReachTask(cfg.task, cfg.reward, cfg.randomization, 4, "cpu")


@pytest.mark.skipif(ISAACGYM_INSTALLED, reason="a real Isaac Gym is installed")
def test_torch_first_import_error_says_so(tmp_path, monkeypatch):
    fake = tmp_path / "isaacgym"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "gymapi.py").write_text(
        "raise ImportError('PyTorch was imported before isaacgym modules.  "
        "Please import torch after isaacgym modules.')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("isaacgym", "isaacgym.gymapi", "isaacgym.gymtorch"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ig.IsaacGymMissingError, match="must be imported before torch"):
        ig.import_isaacgym()


# -- tensor bookkeeping ----------------------------------------------------------------------
def test_arm_dof_views_read_and_write_the_right_slots():
    n, dofs = 3, 9
    buf = torch.arange(n * dofs * 2, dtype=torch.float32).view(n * dofs, 2)
    original = buf.clone()
    pos, vel = ig.arm_dof_views(buf, n, dofs)
    assert pos.shape == vel.shape == (n, 7)
    for e in range(n):
        for j in range(7):
            assert pos[e, j] == buf[e * dofs + j, 0]
            assert vel[e, j] == buf[e * dofs + j, 1]
    env_ids = torch.tensor([2, 0])
    pos[env_ids] = torch.full((2, 7), -1.0)
    vel[env_ids] = torch.full((2, 7), -2.0)
    expected = original.clone()
    for e in (0, 2):
        expected[e * dofs:e * dofs + 7, 0] = -1.0
        expected[e * dofs:e * dofs + 7, 1] = -2.0
    assert torch.equal(buf, expected)  # env 1 and every finger DOF untouched
    pos[1, 6] = 42.0
    assert buf[1 * dofs + 6, 0] == 42.0


def test_arm_dof_views_with_an_offset_and_bad_shapes():
    buf = torch.zeros(2 * 10, 2)
    pos, _ = ig.arm_dof_views(buf, 2, 10, first_arm_dof=2)
    pos[1] = 1.0
    assert buf[10 + 2:10 + 9, 0].eq(1.0).all() and buf[:, 0].sum() == 7.0
    with pytest.raises(ValueError):
        ig.arm_dof_views(torch.zeros(17, 2), 2, 9)
    with pytest.raises(ValueError):
        ig.arm_dof_views(buf, 2, 10, first_arm_dof=4)


def test_per_env_dofs_and_body_positions_are_views():
    flat = torch.zeros(4 * 9)
    ig.per_env_dofs(flat, 4, 9)[:, 7:9] = 0.04
    assert flat.view(4, 9)[:, 7:].eq(0.04).all() and flat.view(4, 9)[:, :7].eq(0).all()
    bodies = torch.arange(3 * 5 * 13, dtype=torch.float32).view(3 * 5, 13)
    hand = ig.body_positions(bodies, 3, 5, body=4)
    assert torch.equal(hand, torch.stack([bodies[e * 5 + 4, :3] for e in range(3)]))


def test_env_ids_to_int32_actor_indices():
    table = torch.tensor([10, 11, 12, 13], dtype=torch.int32)
    idx = ig.actor_indices(torch.tensor([3, 0, 2]), table)
    assert idx.dtype == torch.int32 and idx.is_contiguous()
    assert idx.tolist() == [13, 10, 12]
    idx[0] = -1  # a new tensor, not a view of the table
    assert table.tolist() == [10, 11, 12, 13]
    assert ig.actor_indices(torch.tensor([1], dtype=torch.int32), table).tolist() == [11]


def test_substep_count():
    assert ig.substep_count(0.02, 0.001) == 20
    assert ig.substep_count(0.02, 1.0 / 500.0) == 10
    assert ig.substep_count(0.02, 0.02) == 1
    assert ig.substep_count(0.02, 0.02 / 20) == 20
    for dt, sim_dt in ((0.02, 0.0015), (0.001, 0.002), (0.0, 0.001), (0.02, -0.001)):
        with pytest.raises(ValueError):
            ig.substep_count(dt, sim_dt)


@pytest.mark.parametrize("sim_dt, pos_tol", [(1e-3, 2e-3), (1e-4, 2e-4)])
def test_lag_substepped_matches_torch_arm_sim(sim_dt, pos_tol):
    """Substepping the lag (ideal drive: joint velocity = target, semi-implicit position
    update as PhysX) reproduces TorchArmSim's exact first-order response."""
    n, dt = 5, 0.02
    limits = fm.joint_limits("fr3")
    ref = TorchArmSim(n, limits, "cpu")
    q0 = torch.tensor(fm.READY_POSE, dtype=torch.float32).repeat(n, 1)
    ref.set_state(torch.arange(n), q0, torch.zeros(n, 7))
    tau = torch.tensor([0.0, 0.005, 0.01, 0.02, 0.03])
    pos, vel = q0.clone().double(), torch.zeros(n, 7, dtype=torch.float64)
    substeps = ig.substep_count(dt, sim_dt)
    gen = torch.Generator().manual_seed(0)
    for _ in range(15):
        command = 0.6 * (2 * torch.rand(n, 7, generator=gen) - 1)
        ref.step(command, tau, dt)
        for _ in range(substeps):
            vel = lag_step(vel, command.double(), tau.double().unsqueeze(-1), sim_dt)[0]
            pos = pos + vel * sim_dt
        assert torch.allclose(vel.float(), ref.joint_vel, atol=1e-5)  # exact at step ends
        assert (pos.float() - ref.joint_pos).abs().max() < pos_tol


def test_asset_root_and_viewer_switches(monkeypatch):
    fake = os.path.join("/opt", "isaacgym", "python", "isaacgym", "__init__.py")
    monkeypatch.delenv(ig.ASSET_ROOT_ENV, raising=False)
    assert ig.default_asset_root(fake) == os.path.join("/opt", "isaacgym", "assets")
    monkeypatch.setenv(ig.ASSET_ROOT_ENV, "/elsewhere/assets")
    assert ig.default_asset_root(fake) == "/elsewhere/assets"
    monkeypatch.delenv(ig.VIEWER_ENV, raising=False)
    assert ig.viewer_requested(None) is False
    monkeypatch.setenv(ig.VIEWER_ENV, "1")
    assert ig.viewer_requested(None) is True
    assert ig.viewer_requested(False) is False
    assert ig.grid_columns(4) == 2 and ig.grid_columns(5) == 3 and ig.grid_columns(1) == 1


def test_flange_helper_agrees_with_the_tcp():
    q = torch.tensor(fm.READY_POSE, dtype=torch.float32) + 0.1 * torch.randn(
        6, 7, generator=torch.Generator().manual_seed(1))
    flange, z = flange_position(q)
    assert torch.allclose(flange + fm.TCP_OFFSET * z, fm.tcp_position(q), atol=1e-6)


def test_gains_and_limits_are_sane():
    assert len(ig.ARM_DAMPING) == len(ig.EFFORT_LIMITS) == fm.NUM_JOINTS
    # drive time constant I / damping stays below ~2 ms for the largest inertias quoted
    assert 3.5 / min(ig.ARM_DAMPING[:4]) <= 2e-3 and 0.3 / min(ig.ARM_DAMPING[4:]) <= 2e-3


def test_pending_envs_to_actor_indices():
    table = torch.arange(5, dtype=torch.int32)
    pending = torch.tensor([False, True, False, True, True])
    idx = ig.pending_actor_indices(pending, table)
    assert idx.dtype == torch.int32 and idx.tolist() == [1, 3, 4]
    assert ig.pending_actor_indices(torch.zeros(5, dtype=torch.bool), table).numel() == 0
