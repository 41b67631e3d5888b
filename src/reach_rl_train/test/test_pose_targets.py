"""Pose targets (task.target=pose): sampling, observation, reward, success, features, goal, config;
point targets keep their draws (test_reach_task.py keeps their behaviour)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reach_rl_core import franka_model as fm  # noqa: E402
from reach_rl_core import orientation as ori  # noqa: E402
from reach_rl_train.actor_critic import ObservationEncoder, split_obs  # noqa: E402
from reach_rl_train.config import ConfigError, RandomizationConfig, load_config  # noqa: E402
from reach_rl_train.held_out import Goal, better, describe, worse_of  # noqa: E402
from reach_rl_train.pose_target import joint7_range, joint7_turn, obs_dim  # noqa: E402
from reach_rl_train.reach_task import ReachTask  # noqa: E402
from reach_rl_train.rewards import orientation_reward  # noqa: E402

DEG = math.pi / 180.0


def make_task(num_envs=64, seed=0, overrides=()):
    cfg = load_config(None, ["task.target=pose"] + list(overrides))
    return ReachTask(cfg.task, cfg.reward, RandomizationConfig(enabled=False), num_envs, "cpu",
                     seed=seed)


def uniform_from(seed):
    g = torch.Generator().manual_seed(seed)
    return lambda shape, low, high: low + (high - low) * torch.rand(shape, generator=g)


def yaw_of_down(rotation):
    """Yaw [rad] of rotation_from_rpy(0, pi, yaw): its x axis is (-cos yaw, -sin yaw, 0)."""
    return torch.atan2(-rotation[:, 1, 0], -rotation[:, 0, 0])


def test_down_targets_point_straight_down_with_any_yaw():
    rotation = ori.sample_down_orientations(uniform_from(1), 4000, 0.0).double()
    down = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(rotation[:, :, 2], down.expand(4000, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(rotation.transpose(1, 2) @ rotation,
                               torch.eye(3, dtype=torch.float64).expand(4000, 3, 3), atol=1e-6, rtol=0)
    counts = torch.histc(yaw_of_down(rotation), bins=8, min=-math.pi, max=math.pi)
    assert counts.min() > 0.8 * 500 and counts.max() < 1.2 * 500  # uniform over [-pi, pi)


def test_cone_targets_stay_in_the_cone_uniformly_over_its_solid_angle():
    cone = 0.4
    rotation = ori.sample_down_orientations(uniform_from(2), 20000, cone).double()
    tilt = torch.acos((-rotation[:, 2, 2]).clamp(-1, 1))  # z axis from straight down
    assert tilt.max() <= cone + 1e-5 and tilt.max() > 0.97 * cone
    inner = (tilt <= cone / 2).double().mean().item()  # the inner cap's share of the area
    assert inner == pytest.approx((1 - math.cos(cone / 2)) / (1 - math.cos(cone)), abs=0.02)
    # The hand's turn about its own axis still takes every value.
    heading = torch.atan2(rotation[:, 1, 0], rotation[:, 0, 0])
    assert torch.histc(heading, bins=8, min=-math.pi, max=math.pi).min() > 0.8 * 20000 / 8


def test_the_observation_carries_unit_quaternions_of_the_targets():
    task = make_task(num_envs=256, overrides=["task.down_cone=0.3"])
    obs = task.reset()
    assert obs.shape == (256, obs_dim("pose")) == (256, 28)
    joint_pos, _, target_pos, target_quat, prev_command = split_obs(obs, "pose")
    torch.testing.assert_close(target_pos, task.target)
    torch.testing.assert_close(target_quat, task.target_quat)
    torch.testing.assert_close(target_quat.norm(dim=-1), torch.ones(256))
    assert torch.all(target_quat[:, 3] >= 0)  # the sign convention: w >= 0
    torch.testing.assert_close(ori.quaternion_to_matrix(target_quat), task.target_rot,
                               atol=1e-6, rtol=0)
    assert torch.all(-task.target_rot[:, 2, 2] >= math.cos(0.3) - 1e-6)


def test_point_targets_draw_as_before_and_pose_targets_draw_their_positions_alike():
    point_cfg = load_config(None, [])
    point = ReachTask(point_cfg.task, point_cfg.reward, RandomizationConfig(enabled=False), 32,
                      "cpu", seed=7)
    point.reset()
    g = torch.Generator().manual_seed(7)
    torch.rand(32, 7, generator=g)  # the start noise, then the targets
    lo, hi = torch.tensor(point_cfg.task.target_min), torch.tensor(point_cfg.task.target_max)
    torch.testing.assert_close(point.target, lo + (hi - lo) * torch.rand(32, 3, generator=g))
    assert not hasattr(point, "target_quat")
    pose = make_task(num_envs=32, seed=7)
    pose.reset()
    torch.testing.assert_close(pose.target, point.target)  # orientations are drawn after
    torch.testing.assert_close(pose.backend.joint_pos, point.backend.joint_pos)


def set_pose_target(task, i, position, rotation):
    task.target[i] = position
    task.target_rot[i] = rotation
    task.target_quat[i] = ori.matrix_to_quaternion(rotation)


def about_z(angle):
    """A turn by ``angle`` rad about the TCP's own z axis (right-multiplied)."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def hold_still(task, cases):
    """Targets ``cases`` [(offset m, turn rad)] from the TCP's pose; zero commands for one
    target period: the rewards of each step and the last step's info."""
    task.reset()
    position, rotation = fm.tcp_pose(task.backend.joint_pos)
    for i, (offset, turn) in enumerate(cases):
        set_pose_target(task, i, position[i] + torch.tensor(offset), rotation[i] @ about_z(turn))
    rewards = []
    for _ in range(task.steps_per_target):
        _, reward, _, info = task.step(torch.zeros(task.num_envs, 7))
        rewards.append(reward)
    return rewards, info


def test_reward_is_highest_at_the_target_pose():
    cases = [((0.0, 0.0, 0.0), 0.0), ((0.0, 0.0, 0.0), 3 * DEG), ((0.0, 0.0, 0.0), 20 * DEG),
             ((0.0, 0.0, 0.0), 90 * DEG), ((0.0, 0.0, 0.0), 180 * DEG), ((0.02, 0.0, 0.0), 0.0)]
    rewards, _ = hold_still(make_task(num_envs=len(cases), overrides=["task.target_period_s=0.2"]),
                            cases)
    first = rewards[0]
    assert torch.all(first[:4] > first[1:5])  # decreasing with the angle
    assert torch.all(first[0] > first[1:])
    w = load_config(None, []).reward
    angles = torch.linspace(0.0, math.pi, 50)
    for d in (0.0, 0.01, 0.5):
        assert torch.all(orientation_reward(angles, torch.full((50,), d), w).diff() < 0)
    # The bonuses are paid near the target position.
    near, far = (orientation_reward(torch.zeros(1), torch.tensor([d]), w) for d in (0.0, 0.3))
    assert near.item() == pytest.approx(w.orientation_near + w.orientation_precise)
    assert far.item() < 0.01 * near.item()


def test_success_needs_both_the_position_and_the_orientation():
    cases = [((0.0, 0.0, 0.0), 0.0),  # on the pose
             ((0.0, 0.0, 0.0), 10 * DEG),  # on the point, 10 deg off
             ((0.02, 0.0, 0.0), 0.0),  # on the orientation, 2 cm off
             ((0.005, 0.0, 0.0), 3 * DEG)]  # within 1 cm and 5 deg
    _, info = hold_still(make_task(num_envs=4, overrides=["task.target_period_s=0.2"]), cases)
    assert info["target_done"].all()
    assert info["success"].tolist() == [1.0, 0.0, 0.0, 1.0]
    np.testing.assert_allclose(info["final_orientation_error"].numpy(),
                               [0.0, 10 * DEG, 0.0, 3 * DEG], atol=2e-3)
    np.testing.assert_allclose(info["final_error"].numpy(), [0.0, 0.0, 0.02, 0.005], atol=1e-4)
    assert info["time_to_reach"][0].item() == pytest.approx(0.02)
    assert torch.isnan(info["time_to_reach"][1:3]).all()


def test_the_encoder_reads_target_quaternions_through_rotation_matrices():
    encoder = ObservationEncoder("pose")
    assert encoder.dim == ObservationEncoder.POSE_DIM == ObservationEncoder.POINT_DIM + 31
    q = torch.tensor(np.random.default_rng(0).uniform(fm.FR3.pos_min, fm.FR3.pos_max, (16, 7)),
                     dtype=torch.float32)
    position, rotation = fm.tcp_pose(q)
    quat = ori.matrix_to_quaternion(rotation)
    vel, prev = torch.zeros(16, 7), torch.zeros(16, 7)
    features = encoder(q, vel, position, quat, prev)
    assert features.shape == (16, encoder.dim)
    torch.testing.assert_close(encoder(q, vel, position, -quat, prev), features)  # q and -q
    pose_part = features[:, ObservationEncoder.POINT_DIM:]
    torch.testing.assert_close(pose_part[:, 9:30], torch.zeros(16, 21), atol=2e-3, rtol=0)
    torch.testing.assert_close(pose_part[:, 6:9], rotation[:, :, 2])  # the TCP's z axis
    # on target joint 7 need not turn; the last feature is how far it already is past its range
    low, high = joint7_range(fm.FR3)
    torch.testing.assert_close(pose_part[:, 30], q[:, 6] - q[:, 6].clamp(low, high), atol=1e-5,
                               rtol=0)
    point = ObservationEncoder()(q, vel, position, prev)
    torch.testing.assert_close(features[:, :ObservationEncoder.POINT_DIM], point)


def joint7_turns(q7_now, q7_goal, others=fm.READY_POSE):
    """joint7_turn from joint 7 at each of ``q7_now`` toward the yaw joint 7 gives at ``q7_goal``
    (every other joint as ``others``): (twist, turn), each [len(q7_now)]."""
    now = torch.tensor(others, dtype=torch.float64).repeat(len(q7_now), 1)
    goal = now.clone()
    now[:, 6] = torch.tensor(q7_now, dtype=torch.float64)
    goal[:, 6] = torch.as_tensor(q7_goal, dtype=torch.float64)
    _, rotation = fm.tcp_pose(now)
    _, target = fm.tcp_pose(goal)
    return joint7_turn(rotation, target, now[:, 6], *joint7_range(fm.FR3))


def test_joint7_turns_the_short_way_when_its_range_allows():
    twist, turn = joint7_turns([0.0, 1.0, -2.0, 2.5], 0.5)
    np.testing.assert_allclose(twist.numpy(), [0.5, -0.5, 2.5, -2.0], atol=1e-9)
    torch.testing.assert_close(turn, twist)
    assert joint7_turns([1.2], 1.2)[1].abs().item() < 1e-9  # on target: no turn


def test_joint7_goes_the_long_way_round_rather_than_through_its_limit():
    # Joint 7 at 3.5 rad would be past its range (which ends 0.2 rad short of 3.0159); the same
    # yaw is joint 7 at 3.5 - 2 pi = -2.78 rad, inside it.
    twist, turn = joint7_turns([1.0, 2.5], 3.5)
    np.testing.assert_allclose(twist.numpy(), [2.5, 1.0], atol=1e-9)  # the short way: to 3.5
    np.testing.assert_allclose(turn.numpy(), [2.5 - 2 * math.pi, 1.0 - 2 * math.pi], atol=1e-9)
    # Along the long way the goal stays put (the turn shrinks as joint 7 moves), and past half
    # way, where the short way becomes this way, nothing jumps.
    q7 = np.linspace(2.5, -2.7, 27)
    _, turn = joint7_turns(q7, 3.5 - 2 * math.pi)
    np.testing.assert_allclose(q7 + turn.numpy(), 3.5 - 2 * math.pi, atol=1e-9)


def test_a_yaw_out_of_joint7s_reach_turns_toward_the_nearer_end():
    low, high = joint7_range(fm.FR3)
    gap = 2 * math.pi - (high - low)  # yaws that joint 7 alone cannot give within its range
    _, turn = joint7_turns([0.0, 0.0], [high + 0.2 * gap, high + 0.8 * gap])
    np.testing.assert_allclose(turn.numpy(), [high + 0.2 * gap, high + 0.8 * gap - 2 * math.pi],
                               atol=1e-9)


def test_the_pose_goal_judges_the_orientation_and_the_time_to_both():
    cfg = load_config(None, ["task.target=pose"])
    goal = Goal.of(cfg)
    assert (goal.success, goal.median_error_mm, goal.median_orientation_deg,
            goal.median_time_s) == (0.99, 2.0, 1.0, 1.2)
    assert Goal.of(load_config(None, [])).median_time_s == 1.0  # point: as before
    good = {"success_rate": 0.995, "median_final_error_mm": 1.5,
            "median_final_orientation_error_deg": 0.8, "median_time_to_pose_s": 1.1,
            "median_time_held_s": 1.15}
    assert goal.reached(good)
    twisted = dict(good, median_final_orientation_error_deg=1.3)
    assert goal.met(twisted) == 3 and not goal.reached(twisted)
    assert better(good, twisted, goal) and not better(twisted, good, goal)
    assert worse_of([good, twisted])["median_final_orientation_error_deg"] == 1.3
    assert "deg" in str(goal) and "1 cm and 5 deg, held from 1.15 s" in describe(good)
    assert goal.loosened(0.5).median_orientation_deg == pytest.approx(1.5)


@pytest.mark.parametrize("overrides, message", [
    (["task.target=orientation"], "task.target must be one of point, pose"),
    (["task.target=pose", "task.down_cone=4"], "task.down_cone must be in [0, pi] rad"),
    (["task.down_cone=0.3"], "applies to pose targets only"),
    (["reward.orientation_near_scale=0"], "orientation_near_scale"),
    (["reward.pose_posture_joints=[1]"], "reward.pose_posture_joints must list 7"),
    (["goal.median_orientation_error_deg=0"], "goal.median_orientation_error_deg"),
    (["ppo.ik_prior_accel=-0.2"], "ik_prior_accel must be >= 0"),
    (["ppo.ik_prior_accel=1.5"], "ik_prior_accel must be at most 1"),
    (["ppo.ik_prior_time=0"], "ppo.ik_prior_time must be > 0 s"),
    (["ppo.ik_prior_accel=0.8"], "follows the IK step of pose targets"),
    (["task.target=pose", "ppo.ik_steps=0", "ppo.ik_prior_accel=0.8"], "ppo.ik_steps > 0"),
])
def test_bad_pose_settings_are_refused_with_the_key_named(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(None, overrides)


def test_point_is_the_default_and_pose_frees_joint_7_of_the_posture_pull():
    cfg = load_config(None, [])
    assert cfg.task.target == "point" and cfg.task.down_cone == 0.0
    task = make_task(num_envs=2)
    assert task.posture_weights[6].item() == 0.0 and task.posture_weights[2].item() == 1.0


def test_pose_targets_are_held_longer_than_points_unless_told():
    assert make_task(num_envs=2).steps_per_target == 200  # 4 s of 0.02 s steps
    point = load_config(None, [])
    assert ReachTask(point.task, point.reward, RandomizationConfig(enabled=False), 2, "cpu",
                     seed=0).steps_per_target == 150  # 3 s
    assert make_task(num_envs=2, overrides=["task.target_period_s=2.5"]).steps_per_target == 125


def drive_joint7(task, steps):
    """Full action on joint 7 alone for ``steps`` policy steps toward its far limit (from about
    pi/4, 3.8 rad away); returns its speed [rad/s] (the slowest arm's) and its least distance
    [rad] to that limit on the way."""
    task.reset()
    action = torch.zeros(task.num_envs, 7)
    action[:, 6] = -1.0
    closest = math.inf
    for _ in range(steps):
        task.step(action)
        closest = min(closest, (task.backend.joint_pos[:, 6] - fm.FR3.pos_min[6]).min().item())
    return task.backend.joint_vel[:, 6].abs().min().item(), closest


def joint7_speed_after(task, steps=40):
    return drive_joint7(task, steps)[0]


def test_pose_commands_brake_every_joint_0_2_rad_inside_its_limits():
    _, pose_closest = drive_joint7(make_task(num_envs=2), 250)  # 5 s: long enough to arrive
    assert 0.19 < pose_closest < 0.25  # filter_limits.POSE_BRAKE_MARGIN
    point = load_config(None, [])
    point_task = ReachTask(point.task, point.reward, RandomizationConfig(enabled=False), 2, "cpu",
                           seed=0)
    assert drive_joint7(point_task, 250)[1] < 0.1  # the deploy filter's 0.05 rad


def test_pose_targets_turn_joint7_faster_than_the_other_joints_move():
    assert joint7_speed_after(make_task(num_envs=2)) > 2.0  # 0.8 s at 3 rad/s^2: 2.4 rad/s
    point = load_config(None, [])
    point_task = ReachTask(point.task, point.reward, RandomizationConfig(enabled=False), 2, "cpu",
                           seed=0)
    assert joint7_speed_after(point_task) <= 1.5 + 1e-6  # task.action_scale
    slow = make_task(num_envs=2, overrides=["task.joint7_action_scale=1.5"])
    assert joint7_speed_after(slow) <= 1.5 + 1e-6
