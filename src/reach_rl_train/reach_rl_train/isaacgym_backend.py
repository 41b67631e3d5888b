"""Isaac Gym (Preview 4) backend: the same arm interface as ``TorchArmSim``, simulated by PhysX.

``IsaacGymArm`` offers exactly what the reach task uses from ``TorchArmSim``:
``num_envs``, ``device``, ``joint_pos`` / ``joint_vel`` [N, 7] (rad, rad/s),
``set_state(env_ids, q, dq)`` and ``step(command, tau, dt)``, so observations, rewards,
targets, resets, randomisation and the exported policy file are unchanged. It also
exposes ``hand_pos`` [N, 3] (m, base frame): the origin of Isaac's ``panda_hand`` body,
which sits at the flange (``panda_link7`` + 0.107 m along z, rotated -45 deg about z), for
checks against ``franka_model``'s kinematics.

The arm is Isaac Gym's own ``franka_panda.urdf`` (fixed base, gravity off, see below),
its seven joints driven in velocity mode; the fingers are held open by a position drive.
Every ``step`` runs ``round(dt / sim_dt)`` PhysX steps; before each one the commanded
joint velocity goes through the same first-order actuator lag as ``TorchArmSim``
(:func:`reach_rl_core.actuator_lag.lag_step`, time constant ``tau`` per env) and becomes the
drives' velocity target.

Randomisation: the task samples the per-env actuator lag ``tau``, the observation latency
and the joint-state noise at each env's reset, from its own generator, whatever the backend
(reach_task.py). The lag acts here, in ``step``; latency and noise act in the task on the
joint state read back, so both backends get the same randomisation.

Resets: ``set_state`` writes the new DOF states into the wrapped DOF-state tensor at once
and flags the envs; the next ``step`` sends all flagged envs to PhysX in one
``set_dof_state_tensor_indexed`` call (int32 actor indices), since Isaac Gym takes each
tensor setter at most once per ``simulate``.

Import order: Isaac Gym refuses to load after torch. Nothing in this module imports torch
or isaacgym at import time; ``import_isaacgym()`` must run before anything imports torch
(the training CLI must call it first when ``task.backend == isaacgym``). In a process where
torch is already loaded, constructing ``IsaacGymArm`` fails with an error that says so.

The tensor bookkeeping (DOF-state layout, actor indices, the substep count,
rigid-body positions) lives in small module-level functions on plain torch tensors, tested
without Isaac Gym (test_isaacgym_backend.py, test_isaacgym_arm.py). This module is Python 3.8
compatible: Isaac Gym Preview 4 supports Python 3.6-3.8 only.

Units: rad, rad/s, s, m, N m.
"""
import math
import os
import sys
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from reach_rl_core.actuator_lag import lag_step
from reach_rl_core.franka_model import NUM_JOINTS, READY_POSE, JointLimits

if TYPE_CHECKING:  # only for annotations: torch must not load before isaacgym
    import torch
    from isaacgym import gymapi

MISSING_MESSAGE = ("backend isaacgym needs Isaac Gym Preview 4 (Python 3.6-3.8): install it in "
                   "its own Python 3.8 environment, see README")
TORCH_FIRST_MESSAGE = ("isaacgym must be imported before torch: call "
                       "reach_rl_train.isaacgym_backend.import_isaacgym() (the reach-rl-train CLI "
                       "does) before anything imports torch")

ASSET_ROOT_ENV = "REACH_RL_ISAACGYM_ASSETS"  # overrides the asset folder
VIEWER_ENV = "REACH_RL_ISAACGYM_VIEWER"  # 1: open the viewer
FRANKA_ASSET = os.path.join("urdf", "franka_description", "robots", "franka_panda.urdf")
HAND_BODY = "panda_hand"
BASE_BODY = "panda_link0"
ARM_DOF_NAMES = tuple("panda_joint%d" % (i + 1) for i in range(NUM_JOINTS))
FINGER_DOF_NAMES = ("panda_finger_joint1", "panda_finger_joint2")

# Joint torque limits, N m: Franka's "Robot and interface specifications" (tau_max; the same
# for Panda and FR3, and the <limit effort> of the URDF).
EFFORT_LIMITS = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)

# Velocity drive gains. PhysX's drive force is stiffness * (q_target - q) + damping *
# (v_target - v), solved implicitly (stable for any gain), and clipped to the effort limit.
# With stiffness 0 it is a pure velocity loop whose time constant is I / damping for the
# joint's effective inertia I. Isaac's franka_panda.urdf has no <inertial> tags, so masses
# come from the collision meshes at the default density (1000 kg/m^3): a few kg per link,
# close to the real arm. Joint 1 with the arm stretched out then sees I <= ~3.5 kg m^2 (about
# 1.5 in the reach workspace), the wrist joints I <= ~0.3 kg m^2. Damping 2000 (joints 1-4)
# and 200 (joints 5-7) N m s/rad gives time constants <= ~1.7 ms (typically well under 1 ms),
# i.e. the drive follows the lag-filtered target within one or two 1 ms substeps, so the
# response is the configured actuator lag tau, as in TorchArmSim, plus <= ~1 substep.
# Velocity-dependent (Coriolis/centrifugal) torques of a few N m leave a tracking error of
# ~1e-3 rad/s. The task's commands change by at most accel_fraction * acc_max (~2-4 rad/s^2),
# far below what the effort limits allow (87 N m / 3.5 kg m^2 = 25 rad/s^2), so the clip
# never binds in normal use, as on the real robot.
ARM_DAMPING = (2000.0, 2000.0, 2000.0, 2000.0, 200.0, 200.0, 200.0)
# Fingers: position drive holding them open (prismatic, 0..0.04 m), gains as IsaacGymEnvs.
FINGER_OPEN = 0.04  # m
FINGER_STIFFNESS = 800.0  # N/m
FINGER_DAMPING = 40.0  # N s/m
FINGER_EFFORT = 20.0  # N
ARMATURE = 0.01  # kg m^2 added to every link (Isaac's Franka examples): wrist stability

# Gravity is off for the arm (AssetOptions.disable_gravity). On the real robot the joint
# velocity interface runs on top of Franka's internal gravity compensation, so the commanded
# velocity is tracked without a gravity-induced offset; TorchArmSim models exactly that. A
# pure damping drive under gravity would instead leave a steady-state velocity error of
# tau_gravity / damping (up to ~40 N m / 2000 = 0.02 rad/s on joint 2), and would sag at
# zero command. Switching gravity off reproduces the compensated arm exactly.

DEFAULT_SIM_DT = 1.0 / 1000.0  # s per PhysX step (20 substeps per 50 Hz policy step)
ENV_SPACING = 1.0  # m, half-width of each env's cell (the arm reaches ~0.86 m)


# -- pure tensor logic (no isaacgym) ------------------------------------------------------
def arm_dof_views(dof_state: "torch.Tensor", num_envs: int, dofs_per_env: int,
                  first_arm_dof: int = 0) -> Tuple["torch.Tensor", "torch.Tensor"]:
    """Views [N, 7] of the arm joint positions and velocities inside Isaac Gym's DOF-state
    tensor ``dof_state`` [N * dofs_per_env, 2] (column 0 position, column 1 velocity; env-major,
    the arm DOFs ``first_arm_dof .. first_arm_dof + 6`` of each env). Writing into a view
    (also ``view[env_ids] = x``) writes the buffer that Isaac Gym reads."""
    if dof_state.shape != (num_envs * dofs_per_env, 2):
        raise ValueError("dof state shape %s is not [%d * %d, 2]"
                         % (tuple(dof_state.shape), num_envs, dofs_per_env))
    if first_arm_dof < 0 or first_arm_dof + NUM_JOINTS > dofs_per_env:
        raise ValueError("arm DOFs %d..%d outside the %d DOFs of an env"
                         % (first_arm_dof, first_arm_dof + NUM_JOINTS - 1, dofs_per_env))
    per_env = dof_state.view(num_envs, dofs_per_env, 2)[:, first_arm_dof:first_arm_dof + NUM_JOINTS]
    return per_env[..., 0], per_env[..., 1]


def per_env_dofs(flat: "torch.Tensor", num_envs: int, dofs_per_env: int) -> "torch.Tensor":
    """View [N, dofs_per_env] of a per-DOF tensor [N * dofs_per_env] (targets, forces)."""
    return flat.view(num_envs, dofs_per_env)


def actor_indices(env_ids: "torch.Tensor", actor_index_of_env: "torch.Tensor") -> "torch.Tensor":
    """The int32 sim-domain actor indices [k] of envs ``env_ids`` [k] (any integer dtype), for
    the ``*_indexed`` tensor calls; ``actor_index_of_env`` [N] maps env id -> actor index.
    The result is a new contiguous tensor: the caller must keep it alive until the
    simulation has consumed it (the next ``gym.simulate``)."""
    import torch

    return actor_index_of_env[env_ids.long()].to(torch.int32).contiguous()


def pending_actor_indices(pending: "torch.Tensor", actor_index_of_env: "torch.Tensor"
                          ) -> "torch.Tensor":
    """The int32 actor indices [k] of the envs flagged in ``pending`` [N] (bool), in env order:
    every env whose DOF state was set since the last PhysX step, for one
    ``set_dof_state_tensor_indexed`` call (Isaac Gym takes each tensor setter at most once per
    ``simulate``: a second indexed call before it would replace the first)."""
    return actor_indices(pending.nonzero(as_tuple=False).squeeze(-1), actor_index_of_env)


def substep_count(dt: float, sim_dt: float) -> int:
    """Number of PhysX steps of ``sim_dt`` s in a policy step of ``dt`` s (at least 1);
    ValueError when ``dt`` is not (within 1e-6 s) a whole number of them."""
    if not (dt > 0.0 and sim_dt > 0.0):
        raise ValueError("dt and sim_dt must be positive, got %r and %r" % (dt, sim_dt))
    n = max(1, int(round(dt / sim_dt)))
    if abs(n * sim_dt - dt) > 1e-6:
        raise ValueError("step dt %g s is not a whole number of sim steps of %g s" % (dt, sim_dt))
    return n


def body_positions(rigid_body_state: "torch.Tensor", num_envs: int, bodies_per_env: int,
                   body: int) -> "torch.Tensor":
    """View [N, 3] of the position of body ``body`` (env-domain index) of every env in Isaac
    Gym's rigid-body state tensor [N * bodies_per_env, 13] (position, quaternion xyzw, linear
    and angular velocity)."""
    return rigid_body_state.view(num_envs, bodies_per_env, 13)[:, body, 0:3]


def grid_columns(num_envs: int) -> int:
    """Envs per row of the (square-ish) grid."""
    return max(1, int(math.ceil(math.sqrt(num_envs))))


def default_asset_root(isaacgym_file: str) -> str:
    """Isaac Gym's own asset folder, from ``isaacgym.__file__`` (<isaacgym>/python/isaacgym/
    __init__.py -> <isaacgym>/assets); ``$REACH_RL_ISAACGYM_ASSETS`` overrides it."""
    override = os.environ.get(ASSET_ROOT_ENV)
    if override:
        return override
    return os.path.normpath(os.path.join(os.path.dirname(isaacgym_file), "..", "..", "assets"))


def viewer_requested(viewer: Optional[bool]) -> bool:
    """``viewer`` if given, else ``$REACH_RL_ISAACGYM_VIEWER`` == 1 (headless by default)."""
    if viewer is not None:
        return bool(viewer)
    return os.environ.get(VIEWER_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


# -- isaacgym -----------------------------------------------------------------------------
class IsaacGymMissingError(ImportError):
    """Isaac Gym cannot be imported (not installed, or torch was imported first)."""


def import_isaacgym() -> None:
    """Import Isaac Gym's ``gymapi`` and ``gymtorch``.

    Must run before torch is imported in the process (Isaac Gym checks it): the training
    CLI must call it first when ``task.backend == isaacgym``. Raises ``IsaacGymMissingError``
    with ``MISSING_MESSAGE`` when Isaac Gym is not installed, and with
    ``TORCH_FIRST_MESSAGE`` when torch was imported before it."""
    try:
        from isaacgym import gymapi  # noqa: F401  (loads Isaac Gym's native libraries)
        from isaacgym import gymtorch  # noqa: F401  (builds/loads its torch extension once)
    except ImportError as error:
        text = str(error)
        if "torch" in text.lower() and "before" in text.lower():
            raise IsaacGymMissingError("%s (Isaac Gym says: %s)" % (TORCH_FIRST_MESSAGE, text)) from error
        if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] == "isaacgym":
            raise IsaacGymMissingError(MISSING_MESSAGE) from error
        raise IsaacGymMissingError("%s (importing it failed: %s)" % (MISSING_MESSAGE, text)) from error


class IsaacGymArm:
    """``num_envs`` Franka arms in Isaac Gym / PhysX behind ``TorchArmSim``'s interface.

    ``joint_pos`` / ``joint_vel`` [N, 7] are fresh tensors after every ``set_state`` / ``step``
    (copies, not views of Isaac Gym's buffer), so a reference kept by the caller, e.g. the
    previous velocity for the acceleration penalty, keeps its value, as with TorchArmSim.
    ``hand_pos`` [N, 3] is the flange position in the base frame, updated by ``step``.

    ``policy_dt`` (s) fixes the PhysX step: ``sim_dt`` is rounded so that a policy step is a
    whole number of PhysX steps. ``viewer``: None reads ``$REACH_RL_ISAACGYM_VIEWER``.
    ``asset_root``: None uses Isaac Gym's assets (or ``$REACH_RL_ISAACGYM_ASSETS``).
    """

    def __init__(self, num_envs: int, limits: JointLimits, device: "torch.device",
                 policy_dt: float, sim_dt: float = DEFAULT_SIM_DT, viewer: Optional[bool] = None,
                 asset_root: Optional[str] = None):
        import_isaacgym()  # raises the clear error without Isaac Gym
        import isaacgym
        import torch
        from isaacgym import gymapi

        from reach_rl_train import torch_arrays  # noqa: F401  (reach_rl_core's math on tensors)

        self.num_envs = num_envs
        self.device = torch.device(device)
        self.substeps = substep_count(policy_dt, sim_dt)
        self.sim_dt = policy_dt / self.substeps  # exactly policy_dt per policy step
        self.pos_min = torch.tensor(limits.pos_min, device=self.device)
        self.pos_max = torch.tensor(limits.pos_max, device=self.device)
        self._want_viewer = viewer_requested(viewer)
        self.viewer = None  # type: Optional[gymapi.Viewer]

        self.gym = gymapi.acquire_gym()
        self.sim = self._create_sim()
        asset = self._load_franka(asset_root or default_asset_root(isaacgym.__file__))
        self._find_dofs(asset)
        self.envs, self.actors = self._create_envs(asset, limits)
        self._find_bodies_and_actors()
        if self._want_viewer:
            self._create_viewer()
        if not self.gym.prepare_sim(self.sim):
            raise RuntimeError("Isaac Gym prepare_sim failed")
        self._bind_state_tensors()
        self._start_at_ready_pose()

    # -- construction ---------------------------------------------------------------------
    def _find_dofs(self, asset: "gymapi.Asset") -> None:
        """The asset's DOF and body counts; the arm's 7 DOFs and the 2 fingers, each in a row."""
        self.dofs_per_env = self.gym.get_asset_dof_count(asset)
        self.bodies_per_env = self.gym.get_asset_rigid_body_count(asset)
        dof_index = self.gym.get_asset_dof_dict(asset)
        arm_dofs = [dof_index[name] for name in ARM_DOF_NAMES]
        finger_dofs = [dof_index[name] for name in FINGER_DOF_NAMES]
        if arm_dofs != list(range(arm_dofs[0], arm_dofs[0] + NUM_JOINTS)) or \
                finger_dofs != [finger_dofs[0], finger_dofs[0] + 1]:
            raise RuntimeError("%s: unexpected DOF order %s" % (FRANKA_ASSET, dof_index))
        self.first_arm_dof = arm_dofs[0]
        self.finger_dofs = slice(finger_dofs[0], finger_dofs[0] + 2)

    def _find_bodies_and_actors(self) -> None:
        """The hand and base bodies, and each env's actor index (env-major, checked)."""
        import torch
        from isaacgym import gymapi

        env0, actor0 = self.envs[0], self.actors[0]
        self.hand_body = self.gym.find_actor_rigid_body_index(env0, actor0, HAND_BODY, gymapi.DOMAIN_ENV)
        self.base_body = self.gym.find_actor_rigid_body_index(env0, actor0, BASE_BODY, gymapi.DOMAIN_ENV)
        if self.hand_body < 0 or self.base_body < 0:
            raise RuntimeError("%s has no %s / %s body" % (FRANKA_ASSET, HAND_BODY, BASE_BODY))
        self.actor_index_of_env = torch.tensor(
            [self.gym.get_actor_index(env, actor, gymapi.DOMAIN_SIM)
             for env, actor in zip(self.envs, self.actors)], dtype=torch.int32, device=self.device)
        # The global DOF and rigid-body tensors are ordered by sim-domain actor index; reading
        # them as [N, per env, ...] (env-major) needs actor i to live in env i.
        if self.actor_index_of_env.tolist() != list(range(self.num_envs)):
            raise RuntimeError("Isaac Gym actor indices %s are not env-major"
                               % self.actor_index_of_env.tolist())

    def _bind_state_tensors(self) -> None:
        """torch views of Isaac Gym's DOF and body states, and the drive-target tensors."""
        import torch
        from isaacgym import gymtorch

        num_envs, dofs = self.num_envs, self.dofs_per_env
        self._dof_state = gymtorch.wrap_tensor(self.gym.acquire_dof_state_tensor(self.sim))
        self._body_state = gymtorch.wrap_tensor(self.gym.acquire_rigid_body_state_tensor(self.sim))
        self._env_dof_state = self._dof_state.view(num_envs, dofs, 2)
        self._pos_view, self._vel_view = arm_dof_views(self._dof_state, num_envs, dofs,
                                                       self.first_arm_dof)
        # Drive targets of all DOFs. Isaac Gym reads them when simulating: they stay referenced
        # (and contiguous) for the life of the sim.
        self._vel_targets = torch.zeros(num_envs * dofs, device=self.device)
        self._arm_target = per_env_dofs(self._vel_targets, num_envs, dofs)[
            :, self.first_arm_dof:self.first_arm_dof + NUM_JOINTS]  # the lag-filter state
        self._pos_targets = torch.zeros(num_envs * dofs, device=self.device)
        per_env_dofs(self._pos_targets, num_envs, dofs)[:, self.finger_dofs] = FINGER_OPEN
        # Envs whose DOF state set_state wrote into self._dof_state since the last PhysX step:
        # sent to Isaac Gym in one indexed call just before the next simulate.
        self._pending = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._reset_indices = None  # type: Optional[torch.Tensor]

    def _start_at_ready_pose(self) -> None:
        """Every arm at rest in the ready pose, fingers open; one PhysX step (zero velocity
        target: nothing moves) so that the rigid-body state and hand_pos are valid."""
        import torch
        from isaacgym import gymtorch

        self._env_dof_state.zero_()
        self._env_dof_state[:, self.finger_dofs, 0] = FINGER_OPEN
        self._pos_view[:] = torch.tensor(READY_POSE, dtype=torch.float32, device=self.device)
        self.gym.set_dof_state_tensor(self.sim, gymtorch.unwrap_tensor(self._dof_state))
        self.gym.set_dof_position_target_tensor(self.sim, gymtorch.unwrap_tensor(self._pos_targets))
        self.gym.set_dof_velocity_target_tensor(self.sim, gymtorch.unwrap_tensor(self._vel_targets))
        self.gym.simulate(self.sim)
        self.gym.fetch_results(self.sim, True)
        self._refresh()

    def _create_sim(self) -> "gymapi.Sim":
        from isaacgym import gymapi

        gpu = self.device.type == "cuda"
        params = gymapi.SimParams()
        params.dt = self.sim_dt
        params.substeps = 1  # ours: the velocity target changes every PhysX step
        params.up_axis = gymapi.UP_AXIS_Z
        params.gravity = gymapi.Vec3(0.0, 0.0, -9.81)  # the arm ignores it (disable_gravity)
        params.use_gpu_pipeline = gpu  # tensors live on the GPU (CPU pipeline for device cpu)
        params.physx.use_gpu = gpu
        params.physx.solver_type = 1  # TGS
        params.physx.num_position_iterations = 4
        params.physx.num_velocity_iterations = 1
        params.physx.num_threads = 0 if gpu else 4
        compute = self.device.index if gpu and self.device.index is not None else 0
        graphics = compute if self._want_viewer else -1  # -1: headless, no rendering at all
        sim = self.gym.create_sim(compute, graphics, gymapi.SIM_PHYSX, params)
        if sim is None:
            raise RuntimeError("Isaac Gym could not create a PhysX sim on %s" % self.device)
        return sim

    def _load_franka(self, root: str) -> "gymapi.Asset":
        from isaacgym import gymapi

        if not os.path.isfile(os.path.join(root, FRANKA_ASSET)):
            raise FileNotFoundError("no %s under %s (set %s to Isaac Gym's assets folder)"
                                    % (FRANKA_ASSET, root, ASSET_ROOT_ENV))
        options = gymapi.AssetOptions()
        options.fix_base_link = True
        options.disable_gravity = True  # see the gravity note at the top of this module
        options.flip_visual_attachments = True  # the Franka meshes are Y-up
        options.collapse_fixed_joints = False  # keep panda_hand a body of its own
        options.armature = ARMATURE
        options.default_dof_drive_mode = int(gymapi.DOF_MODE_VEL)
        options.use_mesh_materials = True
        asset = self.gym.load_asset(self.sim, root, FRANKA_ASSET, options)
        if asset is None:
            raise RuntimeError("Isaac Gym could not load %s" % os.path.join(root, FRANKA_ASSET))
        return asset

    def _dof_properties(self, asset: "gymapi.Asset", limits: JointLimits) -> Any:
        from isaacgym import gymapi

        props = self.gym.get_asset_dof_properties(asset)  # numpy structured array, one row per DOF
        for j in range(NUM_JOINTS):
            d = self.first_arm_dof + j
            props["driveMode"][d] = int(gymapi.DOF_MODE_VEL)
            props["stiffness"][d] = 0.0
            props["damping"][d] = ARM_DAMPING[j]
            props["friction"][d] = 0.0
            props["hasLimits"][d] = True
            props["lower"][d] = limits.pos_min[j]  # the URDF is a Panda; FR3 gets its own limits
            props["upper"][d] = limits.pos_max[j]
            props["velocity"][d] = limits.vel_max[j]
            props["effort"][d] = EFFORT_LIMITS[j]
        for d in range(self.finger_dofs.start, self.finger_dofs.stop):
            props["driveMode"][d] = int(gymapi.DOF_MODE_POS)
            props["stiffness"][d] = FINGER_STIFFNESS
            props["damping"][d] = FINGER_DAMPING
            props["effort"][d] = FINGER_EFFORT
        return props

    def _create_envs(self, asset: "gymapi.Asset", limits: JointLimits
                     ) -> Tuple[List["gymapi.Env"], List[int]]:
        from isaacgym import gymapi

        props = self._dof_properties(asset, limits)
        lower = gymapi.Vec3(-ENV_SPACING, -ENV_SPACING, 0.0)
        upper = gymapi.Vec3(ENV_SPACING, ENV_SPACING, ENV_SPACING)
        pose = gymapi.Transform(gymapi.Vec3(0.0, 0.0, 0.0), gymapi.Quat(0.0, 0.0, 0.0, 1.0))
        envs = []  # type: List[gymapi.Env]
        actors = []  # type: List[int]
        columns = grid_columns(self.num_envs)
        for i in range(self.num_envs):
            env = self.gym.create_env(self.sim, lower, upper, columns)
            # Collision group i: no contacts between envs. Filter 1: no self-collisions, as in
            # TorchArmSim (the real robot's self-collision reflex is not modelled either).
            actor = self.gym.create_actor(env, asset, pose, "franka", i, 1, 0)
            self.gym.set_actor_dof_properties(env, actor, props)
            envs.append(env)
            actors.append(actor)
        return envs, actors

    def _create_viewer(self) -> None:
        from isaacgym import gymapi

        viewer = self.gym.create_viewer(self.sim, gymapi.CameraProperties())
        if viewer is None:
            raise RuntimeError("Isaac Gym could not open a viewer (no display?); unset %s" % VIEWER_ENV)
        self.gym.viewer_camera_look_at(viewer, self.envs[0], gymapi.Vec3(1.8, 1.8, 1.2),
                                       gymapi.Vec3(0.3, 0.0, 0.4))
        self.viewer = viewer

    # -- the TorchArmSim interface --------------------------------------------------------
    def set_state(self, env_ids: "torch.Tensor", joint_pos: "torch.Tensor",
                  joint_vel: "torch.Tensor") -> None:
        """Teleport arms ``env_ids`` [k] to ``joint_pos`` [k, 7] rad (clamped to the limits) with
        ``joint_vel`` [k, 7] rad/s, fingers open; their velocity targets (the lag-filter state)
        become ``joint_vel``. ``joint_pos`` / ``joint_vel`` show it at once; PhysX takes it at
        the next ``step`` (one indexed write for all envs set since the last step, however
        many calls set them), ``hand_pos`` after that step."""
        import torch

        env_ids = env_ids.to(self.device).long()
        q = torch.max(torch.min(joint_pos.to(self.device), self.pos_max), self.pos_min)
        dq = joint_vel.to(self.device)
        self._env_dof_state[env_ids] = 0.0
        self._env_dof_state[env_ids, self.finger_dofs, 0] = FINGER_OPEN
        self._pos_view[env_ids] = q
        self._vel_view[env_ids] = dq
        self._arm_target[env_ids] = dq
        self._pending[env_ids] = True
        self.joint_pos = self._pos_view.clone()
        self.joint_vel = self._vel_view.clone()

    def reset_where(self, mask: "torch.Tensor", joint_pos: "torch.Tensor",
                    joint_vel: "torch.Tensor") -> None:
        """``set_state`` for the arms where ``mask`` [N] is true, from ``joint_pos`` and
        ``joint_vel`` [N, 7] (PhysX takes indexed writes: this waits for the mask)."""
        env_ids = mask.nonzero(as_tuple=False).squeeze(-1)
        if len(env_ids):
            self.set_state(env_ids, joint_pos[env_ids], joint_vel[env_ids])

    def step(self, command: "torch.Tensor", tau: "torch.Tensor", dt: float) -> None:
        """Hold velocity ``command`` [N, 7] rad/s for ``dt`` s through lags ``tau`` [N] s."""
        from isaacgym import gymtorch

        substeps = substep_count(dt, self.sim_dt)
        command = command.to(self.device)
        tau = tau.to(self.device)
        self._write_pending_states()
        for _ in range(substeps):
            self._arm_target.copy_(lag_step(self._arm_target, command, tau.unsqueeze(-1),
                                            self.sim_dt)[0])
            self.gym.set_dof_velocity_target_tensor(self.sim, gymtorch.unwrap_tensor(self._vel_targets))
            self.gym.simulate(self.sim)
            self.gym.fetch_results(self.sim, True)
        self._reset_indices = None  # consumed by the first simulate above
        self._refresh()
        if self.viewer is not None:
            self._draw()

    def _write_pending_states(self) -> None:
        """Hand the DOF states that ``set_state`` wrote to Isaac Gym: one
        ``set_dof_state_tensor_indexed`` call (int32 sim-domain actor indices) per PhysX step."""
        from isaacgym import gymtorch

        if not bool(self._pending.any()):
            return
        # Referenced until the next simulate has consumed it (the GPU pipeline reads it then).
        self._reset_indices = pending_actor_indices(self._pending, self.actor_index_of_env)
        self._pending.zero_()
        self.gym.set_dof_state_tensor_indexed(
            self.sim, gymtorch.unwrap_tensor(self._dof_state),
            gymtorch.unwrap_tensor(self._reset_indices), len(self._reset_indices))

    def _refresh(self) -> None:
        self.gym.refresh_dof_state_tensor(self.sim)
        self.gym.refresh_rigid_body_state_tensor(self.sim)
        self.joint_pos = self._pos_view.clone()
        self.joint_vel = self._vel_view.clone()
        # The base is fixed at its env's origin with identity rotation, so the base frame is
        # the env frame shifted by the base position, whatever frame the tensor reports in.
        hand = body_positions(self._body_state, self.num_envs, self.bodies_per_env, self.hand_body)
        base = body_positions(self._body_state, self.num_envs, self.bodies_per_env, self.base_body)
        self.hand_pos = hand - base

    def _draw(self) -> None:
        if self.viewer is None:
            return
        if self.gym.query_viewer_has_closed(self.viewer):
            self.gym.destroy_viewer(self.viewer)
            self.viewer = None
            return
        self.gym.step_graphics(self.sim)
        self.gym.draw_viewer(self.viewer, self.sim, False)  # False: visual, not collision meshes

    def close(self) -> None:
        """Release the viewer and the sim."""
        if self.viewer is not None:
            self.gym.destroy_viewer(self.viewer)
            self.viewer = None
        self.gym.destroy_sim(self.sim)
