"""IsaacGymArm against a stand-in for Isaac Gym (fake_isaacgym.py): the sim it builds, its state
bookkeeping, actuator lag, the viewer switch and the reach task on both backends; and on a real
Isaac Gym where one is installed."""
import json
import math
import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import pytest

torch = pytest.importorskip("torch")

import fake_isaacgym  # noqa: E402
from fake_isaacgym import DOF_MODE_POS, DOF_MODE_VEL, flange_position  # noqa: E402
from reach_rl_train.arm_sim import TorchArmSim  # noqa: E402
from source_tree import source_env as _env  # noqa: E402
from reach_rl_core import franka_model as fm  # noqa: E402
from reach_rl_train import isaacgym_backend as ig  # noqa: E402


ISAACGYM_INSTALLED = find_spec("isaacgym") is not None


@pytest.fixture
def fake_isaacgym_gym(tmp_path, monkeypatch):
    return fake_isaacgym.install(tmp_path, monkeypatch)


def test_arm_builds_the_sim_as_specified(fake_isaacgym_gym):
    gym = fake_isaacgym_gym
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


def test_set_state_writes_only_its_envs_once_per_step(fake_isaacgym_gym):
    gym = fake_isaacgym_gym
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


def test_step_applies_each_envs_actuator_lag(fake_isaacgym_gym):
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


def test_viewer_flag(fake_isaacgym_gym, monkeypatch):
    gym = fake_isaacgym_gym
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


def test_reach_task_agrees_on_both_backends(fake_isaacgym_gym):
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
    assert len(fake_isaacgym_gym.indexed_calls) == 1 + int(a["done"][:-1].any(-1).sum())
    assert fake_isaacgym_gym.indexed_calls[0] == list(range(8))  # reset(): every env


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
