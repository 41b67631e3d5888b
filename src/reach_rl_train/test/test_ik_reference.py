"""The IK reference posture of pose targets (reach_rl_train.ik_reference)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reach_rl_core import franka_model as fm  # noqa: E402
from reach_rl_core import orientation as ori  # noqa: E402
from reach_rl_core.orientation import orientation_error_angle  # noqa: E402
from reach_rl_train import ik_reference  # noqa: E402
from reach_rl_train.actor_critic import ActorCritic, ObservationEncoder  # noqa: E402
from reach_rl_train.config import RandomizationConfig, load_config  # noqa: E402
from reach_rl_train.pose_target import (LIMIT_CLEARANCE, as_quaternion, joint7_range,  # noqa: E402
                                        sin_axis)
from reach_rl_train.reach_task import ReachTask  # noqa: E402


def test_the_batched_gauss_jordan_solves_like_torch():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(32, 6, 6, generator=g, dtype=torch.float64)
    a = m @ m.transpose(-1, -2) + 0.1 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(32, 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ik_reference.solve_spd(a, b), torch.linalg.solve(a, b))


def test_the_jacobian_moves_the_tcp_as_a_small_joint_step_does():
    q = torch.tensor(fm.READY_POSE, dtype=torch.float64) + 0.1
    dq = 1e-2 * torch.tensor([1e-4, -2e-4, 1e-4, 3e-4, -1e-4, 2e-4, -3e-4], dtype=torch.float64)
    position, rotation = fm.tcp_pose(q)
    moved, moved_rotation = fm.tcp_pose(q + dq)
    position_there, rotation_there, j = ik_reference.pose_and_jacobian(q)
    torch.testing.assert_close(position_there, position)
    torch.testing.assert_close(rotation_there, rotation)
    predicted = j @ dq
    torch.testing.assert_close(predicted[:3], moved - position, atol=1e-11, rtol=1e-4)
    turned = sin_axis(moved_rotation @ rotation.T)  # the small rotation's vector, base frame
    torch.testing.assert_close(predicted[3:], turned, atol=1e-11, rtol=1e-4)


def reference_after(q, target_pos, target_rot, steps):
    lo = torch.tensor(fm.FR3.pos_min, dtype=torch.float64) + LIMIT_CLEARANCE
    hi = torch.tensor(fm.FR3.pos_max, dtype=torch.float64) - LIMIT_CLEARANCE
    reference = ik_reference.start(q, target_rot, joint7_range(fm.FR3))
    for _ in range(steps):
        reference = ik_reference.refine(reference, target_pos, target_rot, lo, hi)
    return reference, lo, hi


def test_the_reference_reaches_a_pose_whose_yaw_joint7_alone_cannot_give():
    # From the ready posture (joint 7 at pi/4), a hand pointing down with a yaw that needs
    # joint 7 about 0.15 rad past its margin both ways round: joints 1 to 6 must give it.
    ready = torch.tensor(fm.READY_POSE, dtype=torch.float64)
    q7_needed = fm.FR3.pos_max[6] - LIMIT_CLEARANCE + 0.15
    turned = ready.clone()
    turned[6] = q7_needed
    _, target_rot = fm.tcp_pose(turned)
    target_pos = torch.tensor([0.5, 0.1, 0.3], dtype=torch.float64)
    reference, lo, hi = reference_after(ready, target_pos, target_rot, 200)  # 4 s
    position, rotation = fm.tcp_pose(reference)
    assert (target_pos - position).norm().item() < 1e-3
    assert orientation_error_angle(rotation, target_rot).item() < math.radians(0.5)
    assert bool(((reference >= lo - 1e-9) & (reference <= hi + 1e-9)).all())
    assert reference[6].item() == pytest.approx(hi[6].item(), abs=0.05)  # joint 7 at its margin
    assert not np.allclose(reference[:6].numpy(), ready[:6].numpy(), atol=0.05)


def test_an_episode_end_and_a_target_period_end_in_one_step_each_get_their_own_draw():
    # Arm 0 ends its episode, arm 1 only its target period, arm 2 neither. A step draws targets
    # for the periods that ended, then the reset's start noise and the reset's targets; each
    # arm's new target, rotation and reference start are those of its own draw, the reset
    # arm's reference from its reset posture.
    cfg = load_config(None, ["task.target=pose", "task.target_period_s=0.2",
                             "task.targets_per_episode=2"])
    task = ReachTask(cfg.task, cfg.reward, RandomizationConfig(enabled=False), 3, "cpu", seed=5)
    task.reset()
    task.episode_step = torch.tensor([task.max_episode_steps - 1, task.steps_per_target - 1, 3])
    target, target_rot = task.target.clone(), task.target_rot.clone()
    g = torch.Generator()
    g.set_state(task.generator.get_state())
    task.step(torch.zeros(3, 7))
    lo, hi = torch.tensor(cfg.task.target_min), torch.tensor(cfg.task.target_max)

    def draw():
        return lo + (hi - lo) * torch.rand(3, 3, generator=g), ori.down_orientations(
            (-math.pi + 2.0 * math.pi * torch.rand(3, generator=g),))

    (period_pos, period_rot), noise = draw(), torch.rand(3, 7, generator=g)
    reset_pos, reset_rot = draw()
    reset_posture = torch.tensor(fm.READY_POSE) + cfg.task.start_noise * (2.0 * noise[0] - 1.0)
    torch.testing.assert_close(task.backend.joint_pos[0], reset_posture)
    torch.testing.assert_close(task.target, torch.stack([reset_pos[0], period_pos[1], target[2]]))
    torch.testing.assert_close(task.target_rot,
                               torch.stack([reset_rot[0], period_rot[1], target_rot[2]]))
    rotations = torch.stack([reset_rot[0], period_rot[1]])
    torch.testing.assert_close(task.reference[:2], ik_reference.start(
        task.backend.joint_pos[:2], rotations, joint7_range(fm.FR3)))
    assert task.reach_step.tolist()[:2] == [-1, -1]


def ik_features(encoder, q, target_pos, target_rot):
    """The encoder's IK step [rad] (the first 7 of its last 14 features) at joints ``q`` (7)."""
    quat = as_quaternion(target_rot.unsqueeze(0))
    zeros = torch.zeros(1, 7)
    features = encoder(q.unsqueeze(0), zeros, target_pos.unsqueeze(0), quat, zeros)
    return encoder.ik_step(features)[0]


def test_the_encoders_ik_step_is_zero_on_the_target_pose():
    encoder = ObservationEncoder("pose", ik_steps=3)
    assert encoder.dim == ObservationEncoder.POSE_DIM + ObservationEncoder.IK_DIM
    q = torch.tensor(fm.READY_POSE, dtype=torch.float32) + 0.1
    target_pos, target_rot = fm.tcp_pose(q)
    assert ik_features(encoder, q, target_pos, target_rot).abs().max().item() < 1e-4
    assert ObservationEncoder("pose").dim == ObservationEncoder.POSE_DIM  # ik_steps 0: none


def test_following_the_encoders_ik_step_reaches_a_yaw_past_joint7s_range():
    # The pose of the reference test above: joint 7 alone cannot give its yaw.
    encoder = ObservationEncoder("pose", ik_steps=3)
    ready = torch.tensor(fm.READY_POSE, dtype=torch.float32)
    turned = ready.clone()
    turned[6] = fm.FR3.pos_max[6] - LIMIT_CLEARANCE + 0.15
    _, target_rot = fm.tcp_pose(turned)
    target_pos = torch.tensor([0.5, 0.1, 0.3])
    q = ready
    for _ in range(10):
        q = q + ik_features(encoder, q, target_pos, target_rot)
    position, rotation = fm.tcp_pose(q)
    assert (target_pos - position).norm().item() < 1e-3
    assert orientation_error_angle(rotation, target_rot).item() < math.radians(0.5)
    assert q[6].item() <= fm.FR3.pos_max[6] - LIMIT_CLEARANCE + 1e-6


def share_at_pose_without_learning(prior_accel, steps=150, num_envs=64):
    """Share of arms within 1 cm and 5 deg of their first pose target after ``steps`` policy
    steps (of its 200) of a pose policy whose network outputs zero, with ``ppo.ik_prior_accel``
    ``prior_accel``."""
    cfg = load_config(None, ["task.target=pose", "ppo.ik_prior_accel=%g" % prior_accel])
    model = ActorCritic.from_config(cfg)
    with torch.no_grad():
        model.actor[-1].weight.zero_()  # (its bias starts at zero)
    task = ReachTask(cfg.task, cfg.reward, RandomizationConfig(enabled=False), num_envs, "cpu",
                     seed=3)
    obs = task.reset()
    with torch.no_grad():
        for _ in range(steps):
            obs, _, _, info = task.step(model.act_deterministic(obs))
    return info["success"].mean().item()


def test_the_ik_prior_alone_takes_an_untrained_policy_to_its_pose_targets():
    assert share_at_pose_without_learning(0.8) >= 0.9
    assert share_at_pose_without_learning(0.0) == 0.0  # the network alone: standing still
