"""The reach task on the built-in simulator: limits, latency, targets, rewards."""
import pytest

torch = pytest.importorskip("torch")

from reach_rl_core import franka_model as fm  # noqa: E402
from reach_rl_train.arm_sim import TorchArmSim  # noqa: E402
from reach_rl_train.config import RandomizationConfig, TrainConfig  # noqa: E402
from reach_rl_train.reach_task import OBS_DIM, ReachTask, select_results  # noqa: E402


def make_task(num_envs=64, randomization=None, seed=0, **task_overrides):
    cfg = TrainConfig()
    for key, value in task_overrides.items():
        setattr(cfg.task, key, value)
    return ReachTask(cfg.task, cfg.reward, randomization or RandomizationConfig(enabled=False),
                     num_envs, "cpu", seed=seed)


def test_targets_lie_in_the_box_and_start_is_near_ready():
    task = make_task(num_envs=512)
    obs = task.reset()
    assert obs.shape == (512, OBS_DIM)
    lo, hi = torch.tensor(task.cfg.target_min), torch.tensor(task.cfg.target_max)
    assert torch.all(task.target >= lo) and torch.all(task.target <= hi)
    ready = torch.tensor(fm.READY_POSE, dtype=torch.float32)
    assert torch.all((task.backend.joint_pos - ready).abs() <= task.cfg.start_noise + 1e-6)


def test_commands_respect_the_deploy_streams_acceleration_and_velocity_bounds():
    task = make_task(num_envs=256)
    task.reset()
    gen = torch.Generator().manual_seed(3)
    previous = task.command.clone()
    for _ in range(200):
        actions = 4 * torch.rand(256, 7, generator=gen) - 2  # far outside [-1, 1] on purpose
        task.step(actions)
        change = (task.command - previous).abs()
        previous = task.command.clone()
        # commands change at most by the acceleration bound times the policy period
        assert torch.all(change <= task.max_command_change + 1e-6)
        assert torch.all(task.command.abs() <= torch.tensor(task.limits.vel_max))
    # joints never leave their position limits
    q = task.backend.joint_pos
    assert torch.all(q >= torch.tensor(task.limits.pos_min) - 1e-6)
    assert torch.all(q <= torch.tensor(task.limits.pos_max) + 1e-6)


def test_full_speed_is_the_deploy_filters_velocity_bound():
    """No speed cap: a policy asking for more than the deploy filter allows gets its bounds
    (velocity_fraction of Franka's, and braking ahead of the limits), on both interfaces."""
    from reach_rl_core.safety_filter import goal_bounds

    for interface in ("ros2_control", "libfranka"):
        task = make_task(num_envs=64, interface=interface)
        task.reset()
        fastest = 0.0
        for _ in range(50):
            q = task.backend.joint_pos.clone()
            task.step(10 * torch.ones(64, 7))  # far beyond every bound on every joint
            low, high = goal_bounds(task.filter_limits, q)
            assert torch.all((task.command >= low - 1e-6) & (task.command <= high + 1e-6))
            fastest = max(fastest, float(task.command.abs().max()))
        assert fastest > 1.0, interface  # the retired stop-time cap held it at 0.26 rad/s


def test_both_interfaces_take_the_deploy_filters_limits():
    from reach_rl_core.filter_limits import FilterLimits

    ros = make_task(num_envs=4)
    franka = make_task(num_envs=4, interface="libfranka")
    accel = float(FilterLimits.for_interface(fm.FR3, "libfranka").accel[0])
    ros_accel = float(FilterLimits.for_interface(fm.FR3, "ros2_control").accel[0])
    assert (accel, ros_accel) == (pytest.approx(4.0), pytest.approx(3.0))
    torch.testing.assert_close(ros.max_command_change, torch.full((7,), ros_accel * 0.02))
    torch.testing.assert_close(franka.max_command_change, torch.full((7,), accel * 0.02))
    assert franka.filter_limits.interface == "libfranka" and ros.filter_limits.interface == "ros2_control"
    franka.reset()
    franka.step(torch.ones(4, 7))
    torch.testing.assert_close(franka.command, torch.full((4, 7), accel * 0.02))
    slower = make_task(num_envs=4, interface="libfranka", accel_fraction=0.1)  # override
    torch.testing.assert_close(slower.max_command_change, torch.full((7,), 1.0 * 0.02))


def test_posture_reward_pulls_redundant_joints_home_and_pushes_away_from_limits():
    from reach_rl_train.rewards import posture_reward

    w = TrainConfig().reward
    ready = torch.tensor(fm.READY_POSE, dtype=torch.float32)
    lo, hi = torch.tensor(fm.FR3.pos_min), torch.tensor(fm.FR3.pos_max)
    q = ready.repeat(5, 1)
    q[1, 6] += 0.5  # joint 7 (does not move the TCP) drifted
    q[2, 0] += 0.5  # joint 1 (needed to reach) moved, far from its limits
    q[3, 6] = hi[6] - 0.1  # joint 7 near its upper limit
    q[4, 3] = lo[3] + 0.1  # joint 4 near its lower limit
    r = posture_reward(q, ready, lo, hi, w, 0.02)
    assert r[0].item() == pytest.approx(0.0, abs=1e-9)
    assert r[2].item() == pytest.approx(0.0, abs=1e-9)  # not a redundant joint
    assert r[1] < -1e-4
    assert r[3] < r[1]  # near the limit costs more than the drift alone
    assert r[4] < -1e-3  # limit term acts on every joint
    closer = q[3:4].clone()
    closer[0, 6] = hi[6] - 0.05
    assert posture_reward(closer, ready, lo, hi, w, 0.02) < r[3]


def test_training_task_does_not_import_the_deploy_loop():
    import subprocess
    import sys

    code = ("import sys, reach_rl_train.reach_task, reach_rl_train.export; "
            "assert 'reach_rl_deploy.deploy_controller' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_observation_latency_delays_joint_state_by_exactly_k_steps():
    rand = RandomizationConfig(enabled=True, actuator_tau_max=0.0, latency_steps_min=2,
                               latency_steps_max=2, joint_pos_noise=0.0, joint_vel_noise=0.0)
    task = make_task(num_envs=8, randomization=rand)
    task.reset()
    true_positions = []
    seen = []
    for _ in range(10):
        obs, _, _, _ = task.step(torch.ones(8, 7))
        true_positions.append(task.backend.joint_pos.clone())
        seen.append(obs[:, :7].clone())
    for k in range(2, 10):
        torch.testing.assert_close(seen[k], true_positions[k - 2])


def test_actuator_lag_slows_the_response():
    sim = TorchArmSim(2, fm.FR3, "cpu")
    sim.set_state(torch.arange(2), torch.tensor([fm.READY_POSE] * 2), torch.zeros(2, 7))
    sim.step(torch.ones(2, 7), torch.tensor([0.0, 0.03]), 0.02)
    fast, slow = sim.joint_vel[0, 0].item(), sim.joint_vel[1, 0].item()
    assert fast == pytest.approx(1.0)
    assert slow == pytest.approx(1.0 - torch.exp(torch.tensor(-0.02 / 0.03)).item(), rel=1e-5)


def test_reward_is_higher_closer_to_the_target_and_success_is_reported():
    task = make_task(num_envs=2, target_period_s=0.2)
    task.reset()
    tcp = task.tcp_position()
    task.target[0] = tcp[0]  # already there
    task.target[1] = tcp[1] + torch.tensor([0.1, 0.0, 0.0])
    rewards, infos = [], []
    for _ in range(task.steps_per_target):
        _, reward, _, info = task.step(torch.zeros(2, 7))
        rewards.append(reward)
        infos.append(info)
    assert torch.all(rewards[0][0] > rewards[0][1])
    assert not any(i["target_done"].any() for i in infos[:-1])
    final = infos[-1]
    assert final["target_done"].tolist() == [True, True]
    assert final["success"].tolist() == [1.0, 0.0]
    assert final["final_error"][1].item() == pytest.approx(0.1, abs=1e-4)
    assert final["time_to_reach"][0].item() == pytest.approx(task.dt)
    assert torch.isnan(final["time_to_reach"][1])


def test_episode_ends_after_all_targets_and_resets():
    task = make_task(num_envs=4, target_period_s=0.2, targets_per_episode=2)
    task.reset()
    dones = [task.step(torch.zeros(4, 7))[2] for _ in range(task.max_episode_steps)]
    assert not any(d.any() for d in dones[:-1])
    assert dones[-1].all()
    assert torch.all(task.episode_step == 0)


def test_select_results_keeps_the_ended_targets_in_step_order():
    task = make_task(num_envs=3, target_period_s=0.2, targets_per_episode=2)
    task.reset()
    infos, dones = [], []
    for _ in range(task.max_episode_steps):
        _, _, done, info = task.step(0.3 * torch.ones(3, 7))
        infos.append(info)
        dones.append(done)
    results = select_results(infos, dones)
    assert results["final_error"].shape == (6,)  # 3 arms x 2 targets
    assert results["episode_return"].shape == (3,)
    first = infos[task.steps_per_target - 1]["final_error"]
    second = infos[-1]["final_error"]
    torch.testing.assert_close(results["final_error"], torch.cat([first, second]))
    torch.testing.assert_close(results["episode_return"], infos[-1]["episode_return"])
