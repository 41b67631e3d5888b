"""A stand-in for Isaac Gym (gymapi, gymtorch) for IsaacGymArm's tests.

FakeGym implements the gymapi/gymtorch calls IsaacGymArm makes, with Isaac Gym's tensor
semantics: wrapped state tensors are buffers that only refresh_* fills; set_*_tensor copies
into the sim (indexed: the DOF rows of the given int32 sim-domain actor indices); each setter
at most once per simulate (a second call raises here); DOF tensor env-major, [N * 9, 2] with
the 7 arm DOFs then 2 finger DOFs per env; rigid-body tensor [N * 11, 13] in the sim frame,
env origins on a grid. Physics is an ideal drive: a velocity-mode DOF moves at its velocity
target (clipped to the DOF's velocity limit, stopped at its position limits), a
position-mode DOF sits at its target. So these tests check the class's bookkeeping, not PhysX.
"""
import os
import sys
import types

import torch

from reach_rl_core import franka_model as fm
from reach_rl_train import isaacgym_backend as ig



def flange_position(q):
    """Flange position [..., 3] m from franka_model's DH chain (the TCP minus 0.1034 m along
    the flange z axis): where Isaac's ``panda_hand`` body origin sits."""
    transform = None
    for i, (a, d, alpha) in enumerate(fm.DH_TABLE):
        link = fm._dh_transform(torch, a, d, alpha, q[..., i])
        transform = link if transform is None else transform @ link
    return transform[..., :3, 3] + fm.FLANGE_D * transform[..., :3, 2], transform[..., :3, 2]


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


def install(tmp_path, monkeypatch):
    """A FakeGym installed as the modules isaacgym, isaacgym.gymapi and isaacgym.gymtorch, with a
    Franka asset file where IsaacGymArm looks; returns the FakeGym."""
    """FakeGym installed as the modules isaacgym, isaacgym.gymapi and isaacgym.gymtorch, in a
    folder laid out like Isaac Gym Preview 4 (python/isaacgym/, assets/urdf/...)."""
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


