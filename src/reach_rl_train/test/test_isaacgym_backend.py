"""The Isaac Gym backend: its tensor bookkeeping on plain torch (no Isaac Gym needed), the
error without Isaac Gym, and, only where Isaac Gym is installed, a 4-env PhysX run."""
import json
import math
import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import pytest

torch = pytest.importorskip("torch")

from reach_rl_core.actuator_lag import lag_step  # noqa: E402
from reach_rl_core import franka_model as fm  # noqa: E402
from reach_rl_train import isaacgym_backend as ig  # noqa: E402
from reach_rl_train.arm_sim import TorchArmSim  # noqa: E402
from source_tree import SOURCE_ROOTS  # noqa: E402

ISAACGYM_INSTALLED = find_spec("isaacgym") is not None


def flange_position(q):
    """Flange position [..., 3] m from franka_model's DH chain (the TCP minus 0.1034 m along
    the flange z axis): where Isaac's ``panda_hand`` body origin sits."""
    transform = None
    for i, (a, d, alpha) in enumerate(fm.DH_TABLE):
        link = fm._dh_transform(torch, a, d, alpha, q[..., i])
        transform = link if transform is None else transform @ link
    return transform[..., :3, 3] + fm.FLANGE_D * transform[..., :3, 2], transform[..., :3, 2]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(SOURCE_ROOTS + [env.get("PYTHONPATH", "")])
    return env


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


# -- the backend class against a stand-in for Isaac Gym --------------------------------------
# FakeGym implements the gymapi/gymtorch calls IsaacGymArm makes, with Isaac Gym's tensor
# semantics: wrapped state tensors are buffers that only refresh_* fills; set_*_tensor copies
# into the sim (indexed: the DOF rows of the given int32 sim-domain actor indices); each setter
# at most once per simulate (a second call raises here); DOF tensor env-major, [N * 9, 2] with
# the 7 arm DOFs then 2 finger DOFs per env; rigid-body tensor [N * 11, 13] in the sim frame,
# env origins on a grid. Physics is an ideal drive: a velocity-mode DOF moves at its velocity
# target (clipped to the DOF's velocity limit, stopped at its position limits), a
# position-mode DOF sits at its target. So these tests check the class's bookkeeping, not PhysX.
FAKE_DOFS = ig.ARM_DOF_NAMES + ig.FINGER_DOF_NAMES
FAKE_BODIES = tuple("panda_link%d" % i for i in range(8)) + (
    "panda_hand", "panda_leftfinger", "panda_rightfinger")
DOMAIN_ACTOR, DOMAIN_ENV, DOMAIN_SIM = 0, 1, 2
DOF_MODE_NONE, DOF_MODE_POS, DOF_MODE_VEL, DOF_MODE_EFFORT = 0, 1, 2, 3


class _Handle:
    """gymapi.Tensor: a descriptor of a torch buffer."""

    def __init__(self, data):
        self.data = data


class _Vec3:
    def __init__(self, x=0.0, y=0.0, z=0.0):
        self.x, self.y, self.z = x, y, z


class FakeGym:
    def __init__(self):
        self.sim_args = None
        self.asset_args = None
        self.actors = []  # (group, filter) per env
        self.env_bounds = []
        self.props = []  # per env
        self.viewer = None
        self.draws = 0
        self.calls = []  # setter names since the last simulate
        self.indexed_calls = []  # int32 index lists, one per set_dof_state_tensor_indexed
        self.simulations = 0
        self.prepared = False

    # sim and asset
    def create_sim(self, compute, graphics, physics, params):
        self.sim_args = (compute, graphics, physics, params)
        self.actors, self.env_bounds, self.props, self.prepared = [], [], [], False
        return "sim"

    def load_asset(self, sim, root, filename, options):
        assert os.path.isfile(os.path.join(root, filename))
        self.asset_args = (root, filename, options)
        return "asset"

    def get_asset_dof_count(self, asset):
        return len(FAKE_DOFS)

    def get_asset_rigid_body_count(self, asset):
        return len(FAKE_BODIES)

    def get_asset_dof_dict(self, asset):
        return {name: i for i, name in enumerate(FAKE_DOFS)}

    def get_asset_dof_properties(self, asset):
        import numpy as np

        dtype = [("hasLimits", "?"), ("lower", "f4"), ("upper", "f4"), ("driveMode", "i4"),
                 ("velocity", "f4"), ("effort", "f4"), ("stiffness", "f4"), ("damping", "f4"),
                 ("friction", "f4"), ("armature", "f4")]
        props = np.zeros(len(FAKE_DOFS), dtype=dtype)
        props["driveMode"] = self.asset_args[2].default_dof_drive_mode
        props["damping"] = 10.0  # the URDF's <dynamics damping>
        return props

    # envs and actors
    def create_env(self, sim, lower, upper, per_row):
        i = len(self.env_bounds)
        self.env_bounds.append((lower, upper, per_row))
        return i

    def create_actor(self, env, asset, pose, name, group, collision_filter, segmentation):
        assert env == len(self.actors), "one actor per env, created env by env"
        self.actors.append((group, collision_filter))
        return 0

    def set_actor_dof_properties(self, env, actor, props):
        assert env == len(self.props)
        self.props.append(props.copy())
        return True

    def get_actor_index(self, env, actor, domain):
        assert domain == DOMAIN_SIM and actor == 0
        return env

    def find_actor_rigid_body_index(self, env, actor, name, domain):
        assert domain == DOMAIN_ENV
        return FAKE_BODIES.index(name) if name in FAKE_BODIES else -1

    # viewer
    def create_viewer(self, sim, camera):
        if self.sim_args[1] < 0:
            return None  # headless sim: Isaac Gym cannot open a viewer
        self.viewer = "viewer"
        return self.viewer

    def viewer_camera_look_at(self, viewer, env, position, target):
        pass

    def query_viewer_has_closed(self, viewer):
        return False

    def step_graphics(self, sim):
        pass

    def draw_viewer(self, viewer, sim, render_collision):
        self.draws += 1

    def destroy_viewer(self, viewer):
        self.viewer = None

    # tensors
    def prepare_sim(self, sim):
        import numpy as np

        n, d = len(self.actors), len(FAKE_DOFS)
        self.n = n
        stack = lambda key: torch.tensor(np.stack([p[key] for p in self.props]).astype("float32"))
        self.mode = torch.tensor(np.stack([p["driveMode"] for p in self.props]))
        self.stiffness, self.damping = stack("stiffness"), stack("damping")
        self.lower, self.upper, self.vmax = stack("lower"), stack("upper"), stack("velocity")
        self.q, self.v = torch.zeros(n, d), torch.zeros(n, d)
        self.pos_target, self.vel_target = torch.zeros(n, d), torch.zeros(n, d)
        self.dof_buffer = torch.full((n * d, 2), float("nan"))
        self.body_buffer = torch.full((n * len(FAKE_BODIES), 13), float("nan"))
        lower, upper, per_row = self.env_bounds[0]
        spacing = (upper.x - lower.x, upper.y - lower.y)
        self.origins = torch.tensor([[spacing[0] * (i % per_row), spacing[1] * (i // per_row), 0.0]
                                     for i in range(n)])
        self.prepared = True
        return True

    def acquire_dof_state_tensor(self, sim):
        assert self.prepared
        return _Handle(self.dof_buffer)

    def acquire_rigid_body_state_tensor(self, sim):
        assert self.prepared
        return _Handle(self.body_buffer)

    def _setter(self, name):
        assert name not in self.calls, "%s called twice before one simulate" % name
        self.calls.append(name)

    def set_dof_state_tensor(self, sim, tensor):
        self._setter("dof_state")
        state = tensor.data.view(self.n, -1, 2)
        self.q, self.v = state[..., 0].clone(), state[..., 1].clone()
        return True

    def set_dof_state_tensor_indexed(self, sim, tensor, indices, count):
        self._setter("dof_state")
        idx = indices.data
        assert idx.dtype == torch.int32 and idx.numel() == count
        self.indexed_calls.append(idx.tolist())
        state = tensor.data.view(self.n, -1, 2)
        rows = idx.long()  # actor index == env index here
        self.q[rows], self.v[rows] = state[rows, :, 0], state[rows, :, 1]
        return True

    def set_dof_velocity_target_tensor(self, sim, tensor):
        self._setter("velocity_target")
        assert tensor.data.is_contiguous()
        self.vel_target = tensor.data.view(self.n, -1).clone()
        return True

    def set_dof_position_target_tensor(self, sim, tensor):
        self._setter("position_target")
        self.pos_target = tensor.data.view(self.n, -1).clone()
        return True

    def simulate(self, sim):
        dt = self.sim_args[3].dt
        vel = self.mode == DOF_MODE_VEL
        pos = self.mode == DOF_MODE_POS
        assert bool((self.stiffness[vel] == 0).all() and (self.damping[vel] > 0).all())
        v = torch.max(torch.min(self.vel_target, self.vmax), -self.vmax)
        q = self.q + v * dt
        clamped = torch.max(torch.min(q, self.upper), self.lower)
        v = torch.where(clamped != q, torch.zeros_like(v), v)
        self.q = torch.where(pos, self.pos_target, clamped)
        self.v = torch.where(pos, torch.zeros_like(v), v)
        self.calls = []
        self.simulations += 1

    def fetch_results(self, sim, wait):
        assert wait

    def refresh_dof_state_tensor(self, sim):
        self.dof_buffer.copy_(torch.stack([self.q, self.v], -1).view(-1, 2))

    def refresh_rigid_body_state_tensor(self, sim):
        bodies = self.body_buffer.view(self.n, len(FAKE_BODIES), 13)
        bodies[:, 0, :3] = self.origins  # panda_link0, fixed at the env origin
        flange, _ = flange_position(self.q[:, :7])
        bodies[:, FAKE_BODIES.index("panda_hand"), :3] = self.origins + flange

    def destroy_sim(self, sim):
        pass


@pytest.fixture
def fake_isaacgym(tmp_path, monkeypatch):
    """FakeGym installed as the modules isaacgym, isaacgym.gymapi and isaacgym.gymtorch, in a
    folder laid out like Isaac Gym Preview 4 (python/isaacgym/, assets/urdf/...)."""
    import types

    urdf = tmp_path / "isaacgym" / "assets" / ig.FRANKA_ASSET
    urdf.parent.mkdir(parents=True)
    urdf.write_text("<robot name='panda'/>")
    gym = FakeGym()
    gymapi = types.ModuleType("isaacgym.gymapi")
    gymapi.acquire_gym = lambda: gym
    gymapi.SimParams = lambda: types.SimpleNamespace(physx=types.SimpleNamespace())
    gymapi.AssetOptions = types.SimpleNamespace
    gymapi.CameraProperties = types.SimpleNamespace
    gymapi.Vec3 = _Vec3
    gymapi.Quat = lambda x, y, z, w: (x, y, z, w)
    gymapi.Transform = lambda p, r: (p, r)
    gymapi.UP_AXIS_Z, gymapi.SIM_PHYSX = 1, 0
    gymapi.DOMAIN_ACTOR, gymapi.DOMAIN_ENV, gymapi.DOMAIN_SIM = DOMAIN_ACTOR, DOMAIN_ENV, DOMAIN_SIM
    gymapi.DOF_MODE_NONE, gymapi.DOF_MODE_POS = DOF_MODE_NONE, DOF_MODE_POS
    gymapi.DOF_MODE_VEL, gymapi.DOF_MODE_EFFORT = DOF_MODE_VEL, DOF_MODE_EFFORT
    gymtorch = types.ModuleType("isaacgym.gymtorch")
    gymtorch.wrap_tensor = lambda handle: handle.data
    gymtorch.unwrap_tensor = _Handle
    package = types.ModuleType("isaacgym")
    package.__file__ = str(tmp_path / "isaacgym" / "python" / "isaacgym" / "__init__.py")
    package.gymapi, package.gymtorch = gymapi, gymtorch
    for name, module in (("isaacgym", package), ("isaacgym.gymapi", gymapi),
                         ("isaacgym.gymtorch", gymtorch)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv(ig.ASSET_ROOT_ENV, raising=False)
    monkeypatch.delenv(ig.VIEWER_ENV, raising=False)
    return gym


def test_arm_builds_the_sim_as_specified(fake_isaacgym):
    gym = fake_isaacgym
    limits = fm.joint_limits("fr3")
    arm = ig.IsaacGymArm(5, limits, "cpu", 0.02)
    compute, graphics, _, params = gym.sim_args
    assert (compute, graphics) == (0, -1) and arm.viewer is None  # headless by default
    assert params.dt == pytest.approx(0.001) and arm.substeps == 20 and params.substeps == 1
    assert params.use_gpu_pipeline is False and params.physx.use_gpu is False  # device cpu
    root, filename, options = gym.asset_args
    assert os.path.normpath(root).endswith(os.path.join("isaacgym", "assets"))
    assert filename == os.path.join("urdf", "franka_description", "robots", "franka_panda.urdf")
    assert options.fix_base_link and options.disable_gravity and not options.collapse_fixed_joints
    assert options.default_dof_drive_mode == DOF_MODE_VEL
    assert [a for a in gym.actors] == [(i, 1) for i in range(5)]  # own group, no self-collision
    for props in gym.props:
        arm_props, fingers = props[:7], props[7:]
        assert (arm_props["driveMode"] == DOF_MODE_VEL).all() and (arm_props["stiffness"] == 0).all()
        assert arm_props["damping"].tolist() == list(ig.ARM_DAMPING)
        assert arm_props["effort"].tolist() == list(ig.EFFORT_LIMITS)
        assert arm_props["lower"].tolist() == pytest.approx(limits.pos_min)
        assert arm_props["upper"].tolist() == pytest.approx(limits.pos_max)
        assert arm_props["velocity"].tolist() == pytest.approx(limits.vel_max)
        assert (fingers["driveMode"] == DOF_MODE_POS).all() and (fingers["stiffness"] > 0).all()
    ready = torch.tensor(fm.READY_POSE, dtype=torch.float32)
    assert torch.allclose(arm.joint_pos, ready.expand(5, 7)) and arm.joint_vel.eq(0).all()
    assert torch.allclose(gym.q[:, 7:], torch.full((5, 2), ig.FINGER_OPEN))  # fingers open
    flange, _ = flange_position(arm.joint_pos)
    assert torch.allclose(arm.hand_pos, flange, atol=1e-5)  # base frame, whatever the env origin
    assert gym.origins[:, :2].abs().sum() > 0  # (the envs do sit at different origins)


def test_set_state_writes_only_its_envs_once_per_step(fake_isaacgym):
    gym = fake_isaacgym
    n = 6
    arm = ig.IsaacGymArm(n, fm.joint_limits("fr3"), "cpu", 0.02)
    before = gym.q.clone()
    ready = torch.tensor(fm.READY_POSE, dtype=torch.float32)
    q_a = ready + torch.linspace(-0.1, 0.1, 7)
    q_b = ready - 0.05
    # Two resets before one step (as a task's full reset followed by a partial one would):
    # both must reach the sim, through one indexed call.
    arm.set_state(torch.tensor([4, 1]), q_a.expand(2, 7), torch.zeros(2, 7))
    arm.set_state(torch.tensor([2], dtype=torch.int32), q_b.unsqueeze(0), torch.zeros(1, 7))
    assert torch.allclose(arm.joint_pos[[1, 2, 4]], torch.stack([q_a, q_b, q_a]))
    assert gym.indexed_calls == []  # nothing sent before the step
    arm.step(torch.zeros(n, 7), torch.zeros(n), 0.02)
    assert gym.indexed_calls == [[1, 2, 4]]
    assert torch.allclose(gym.q[[1, 4], :7], q_a.expand(2, 7), atol=1e-6)
    assert torch.allclose(gym.q[2, :7], q_b, atol=1e-6)
    assert torch.equal(gym.q[[0, 3, 5]], before[[0, 3, 5]])  # untouched envs
    assert torch.allclose(gym.q[:, 7:], torch.full((n, 2), ig.FINGER_OPEN))
    assert torch.allclose(arm.joint_pos, gym.q[:, :7]) and torch.allclose(arm.joint_vel, gym.v[:, :7])
    flange, _ = flange_position(arm.joint_pos)
    assert torch.allclose(arm.hand_pos, flange, atol=1e-5)
    arm.step(torch.zeros(n, 7), torch.zeros(n), 0.02)
    assert len(gym.indexed_calls) == 1  # no reset pending: no indexed call
    # joint limits: set_state clamps like TorchArmSim
    arm.set_state(torch.tensor([0]), torch.full((1, 7), 10.0), torch.zeros(1, 7))
    assert torch.allclose(arm.joint_pos[0], torch.tensor(fm.joint_limits("fr3").pos_max))


def test_step_applies_each_envs_actuator_lag(fake_isaacgym):
    n, dt = 4, 0.02
    limits = fm.joint_limits("fr3")
    arm = ig.IsaacGymArm(n, limits, "cpu", dt)
    ref = TorchArmSim(n, limits, "cpu")
    ids = torch.arange(n)
    q0 = torch.tensor(fm.READY_POSE, dtype=torch.float32).repeat(n, 1)
    arm.set_state(ids, q0, torch.zeros(n, 7))
    ref.set_state(ids, q0, torch.zeros(n, 7))
    tau = torch.tensor([0.0, 0.01, 0.02, 0.03])
    command = torch.tensor([0.4, -0.3, 0.2, -0.5, 0.6, 0.3, -0.2]).expand(n, 7)
    for k in range(10):
        arm.step(command, tau, dt)
        ref.step(command, tau, dt)
        assert torch.allclose(arm.joint_vel, ref.joint_vel, atol=1e-5)
        assert (arm.joint_pos - ref.joint_pos).abs().max() < 2e-3
        if k == 0:  # the lag is per env: one step from rest, the slower envs lag further behind
            assert (arm.joint_vel[:, 0].diff() < -0.01).all() and arm.joint_vel[0, 0] == 0.4


def test_viewer_flag(fake_isaacgym, monkeypatch):
    gym = fake_isaacgym
    arm = ig.IsaacGymArm(2, fm.joint_limits("fr3"), "cpu", 0.02, viewer=True)
    assert gym.sim_args[1] == 0 and arm.viewer == "viewer"  # graphics on the compute device
    arm.step(torch.zeros(2, 7), torch.zeros(2), 0.02)
    arm.step(torch.zeros(2, 7), torch.zeros(2), 0.02)
    assert gym.draws == 2
    arm.close()
    assert gym.viewer is None
    monkeypatch.setenv(ig.VIEWER_ENV, "1")
    assert ig.IsaacGymArm(2, fm.joint_limits("fr3"), "cpu", 0.02).viewer == "viewer"


def _run_task(backend_name, steps, seed=7):
    """A reach task on backend ``backend_name`` with the default randomisation, short
    episodes (so that envs reset by index during the run) and fixed random actions."""
    from reach_rl_train.config import TrainConfig
    from reach_rl_train.reach_task import ReachTask

    cfg = TrainConfig()
    cfg.task.backend = backend_name
    cfg.task.target_period_s, cfg.task.targets_per_episode = 0.6, 2
    assert cfg.randomization.enabled and cfg.randomization.actuator_tau_max > 0
    n = 8
    task = ReachTask(cfg.task, cfg.reward, cfg.randomization, n, "cpu", seed=seed)
    actions = torch.Generator().manual_seed(seed + 1)
    out = {"obs": [task.reset(stagger=True)], "reward": [], "done": [], "tau": [], "q": []}
    for _ in range(steps):
        obs, reward, done, _ = task.step(2 * torch.rand(n, 7, generator=actions) - 1)
        for key, value in (("obs", obs), ("reward", reward), ("done", done), ("tau", task.tau),
                           ("q", task.backend.joint_pos)):
            out[key].append(value.clone())
    return task, {key: torch.stack(values) for key, values in out.items()}


def test_reach_task_agrees_on_both_backends(fake_isaacgym):
    """The task fed by IsaacGymArm (over the ideal-drive stand-in) and by TorchArmSim: same
    targets, resets, randomisation and done flags exactly; same observations and rewards up
    to the substep discretisation of the lag (velocity exact at step ends, position within
    1e-3 rad)."""
    steps = 120
    torch_task, a = _run_task("torch", steps)
    isaac_task, b = _run_task("isaacgym", steps)
    assert isinstance(isaac_task.backend, ig.IsaacGymArm)
    assert isinstance(torch_task.backend, TorchArmSim)
    assert a["done"].sum() >= 8  # every env was reset by index at least once on the way
    assert torch.equal(a["done"], b["done"]) and torch.equal(a["tau"], b["tau"])
    assert torch.equal(torch_task.latency, isaac_task.latency)
    assert torch.equal(a["obs"][..., 14:17], b["obs"][..., 14:17])  # targets
    # measured: 2.7e-4 rad, 2.7e-4, 8e-6 (rewards are up to ~0.14 per step)
    assert (a["q"] - b["q"]).abs().max() < 1e-3
    assert (a["obs"] - b["obs"]).abs().max() < 1e-3
    assert (a["reward"] - b["reward"]).abs().max() < 1e-4
    # one indexed DOF-state write per step that followed resets (the last step's is pending)
    assert len(fake_isaacgym.indexed_calls) == 1 + int(a["done"][:-1].any(-1).sum())
    assert fake_isaacgym.indexed_calls[0] == list(range(8))  # reset(): every env


# -- the real thing, only where Isaac Gym is installed ---------------------------------------
ISAAC_SCRIPT = textwrap.dedent("""
    import json, sys
    from reach_rl_train.isaacgym_backend import IsaacGymArm, import_isaacgym
    import_isaacgym()  # before torch
    import torch
    from reach_rl_core import franka_model as fm
    from reach_rl_train.arm_sim import TorchArmSim
    from reach_rl_train.config import TrainConfig
    from reach_rl_train.reach_task import ReachTask

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    n, dt = 4, 0.02
    limits = fm.joint_limits("panda")
    arm = IsaacGymArm(n, limits, device, dt, viewer=False)
    ref = TorchArmSim(n, limits, device)
    ids = torch.arange(n, device=device)
    q0 = torch.tensor(fm.READY_POSE, dtype=torch.float32, device=device).repeat(n, 1)
    q0 = q0 + 0.05 * torch.arange(n, device=device).unsqueeze(-1)
    arm.set_state(ids, q0, torch.zeros(n, 7, device=device))
    ref.set_state(ids, q0, torch.zeros(n, 7, device=device))
    set_error = (arm.joint_pos - q0).abs().max().item()
    command = torch.zeros(n, 7, device=device)
    command[:, 0], command[:, 3], command[:, 5] = 0.5, -0.3, 0.4
    tau = torch.tensor([0.0, 0.01, 0.02, 0.03], device=device)
    for _ in range(25):
        arm.step(command, tau, dt)
        ref.step(command, tau, dt)
    q, hand = arm.joint_pos.tolist(), arm.hand_pos.tolist()
    cfg = TrainConfig()
    cfg.task.robot = "panda"
    task = ReachTask(cfg.task, cfg.reward, cfg.randomization, n, device, backend=arm)
    obs = task.reset()
    for _ in range(5):
        obs, reward, done, info = task.step(torch.zeros(n, 7, device=device))
    print(json.dumps({
        "set_error": set_error,
        "q0": q0.tolist(), "q": q, "q_ref": ref.joint_pos.tolist(), "hand": hand,
        "q_task": arm.joint_pos.tolist(), "hand_task": arm.hand_pos.tolist(),
        "finite": bool(torch.isfinite(obs).all()),
    }))
""")


@pytest.mark.skipif(not ISAACGYM_INSTALLED, reason="Isaac Gym not installed")
def test_isaacgym_four_envs_move_and_match_the_kinematics():
    # A fresh interpreter: Isaac Gym must be imported before torch, which this one has loaded.
    out = subprocess.run([sys.executable, "-c", ISAAC_SCRIPT], env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["set_error"] < 1e-6 and result["finite"]
    q0, q, q_ref = (torch.tensor(result[k]) for k in ("q0", "q", "q_ref"))
    moved = q - q0
    assert (moved[:, 0] > 0.1).all() and (moved[:, 3] < -0.05).all() and (moved[:, 5] > 0.1).all()
    for j in (1, 2, 4, 6):  # not commanded: stay put
        assert moved[:, j].abs().max() < 0.02
    assert (q - q_ref).abs().max() < 0.03  # same lag response as the built-in simulator
    for q_key, hand_key in (("q", "hand"), ("q_task", "hand_task")):
        flange, _ = flange_position(torch.tensor(result[q_key]))
        hand = torch.tensor(result[hand_key])
        assert not math.isnan(float(hand.sum()))
        # Isaac's panda_hand origin is the flange (link7 + 0.107 m, turned -45 deg about z)
        assert (hand - flange).norm(dim=-1).max() < 0.01, (hand_key, hand, flange)
