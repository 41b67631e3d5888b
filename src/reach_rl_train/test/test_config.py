"""Configuration errors are caught before anything runs, with a message naming the key."""
import os

import pytest

from reach_rl_train.config import ConfigError, load_config, parse_override

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_YAML = os.path.join(ROOT, "config", "train.yaml")


def test_package_yaml_loads_and_overrides_apply():
    cfg = load_config(TRAIN_YAML, ["ppo.learning_rate=3e-4", "task.robot=panda",
                                   "task.target_min=[0.3, -0.2, 0.2]"])
    assert cfg.ppo.learning_rate == pytest.approx(3e-4)
    assert cfg.task.robot == "panda"
    assert cfg.task.target_min == [0.3, -0.2, 0.2]


@pytest.mark.parametrize("override, message", [
    ("ppo.learnin_rate=1", "unknown key ppo.learnin_rate"),
    ("tsk.robot=fr3", "unknown section 'tsk'"),
    ("task.robot=ur5", "task.robot must be one of"),
    ("run.num_envs=0", "run.num_envs must be >= 1"),
    ("run.num_envs=many", "run.num_envs must be a int"),
    ("task.policy_dt=-0.02", "task.policy_dt"),
    ("task.accel_fraction=1.5", "task.accel_fraction must be in (0, 1]"),
    ("task.jerk_fraction=0", "task.jerk_fraction must be in (0, 1]"),
    ("task.interface=ethercat", "task.interface must be one of ros2_control, libfranka"),
    ("task.max_stop_time=0.2", "unknown key task.max_stop_time"),  # the speed cap is retired
    ("task.control_rate=1000", "unknown key task.control_rate"),
    ("reward.posture_joints=[1, 1]", "reward.posture_joints must list 7 weights"),
    ("reward.limit_margin=0", "reward.limit_margin must be > 0 rad"),
    ("randomization.latency_steps_max=-1", "latency_steps"),
    ("task.target_min=[0.7, 0, 0]", "target_min must be <= task.target_max"),
    ("run.device=tpu", "run.device must be cpu, cuda"),
    ("run.out=policy.pt", "ending in .onnx"),
    ("nonsense", "section.key=value"),
])
def test_bad_values_are_refused_with_the_key_named(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(TRAIN_YAML, [override])
    assert message in str(err.value)


def test_unknown_key_in_a_yaml_file_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task:\n  robto: fr3\n")
    with pytest.raises(ConfigError, match="unknown key task.robto"):
        load_config(str(path))


def test_parse_override_reads_yaml_values():
    assert parse_override("randomization.enabled=false") == {"randomization": {"enabled": False}}


def test_cli_refuses_cuda_without_cuda(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from reach_rl_train.cli import train_main

    assert train_main(["--device", "cuda", "--max-iterations", "1", "--out", "/tmp/x.onnx"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_cli_refuses_unknown_override(capsys):
    from reach_rl_train.cli import train_main

    assert train_main(["ppo.bogus=1"]) == 2
    assert "unknown key ppo.bogus" in capsys.readouterr().err


def test_viewer_flag_sets_the_isaacgym_viewer_key(monkeypatch):
    """reach-rl-train --viewer asks for Isaac Gym's viewer; it is off (headless) by default."""
    from reach_rl_train import cli

    seen = {}

    def stop_after_config(path, overrides):
        seen["cfg"] = load_config(path, overrides)
        raise ConfigError("stop here")

    monkeypatch.setattr(cli, "load_config", stop_after_config)
    assert cli.train_main(["--viewer"]) == 2
    assert seen["cfg"].task.isaacgym_viewer is True
    assert cli.train_main([]) == 2
    assert seen["cfg"].task.isaacgym_viewer is False


def test_command_limits_follow_the_interface_with_overrides():
    """task.interface picks the deploy filter's limits, as the deploy node builds them once
    per policy step; -1 keys take the interface's value, others override it."""
    import numpy as np

    from reach_rl_core.franka_model import FR3
    from reach_rl_core.filter_limits import FilterLimits
    from reach_rl_train.config import INTERFACE_DEFAULT, task_filter_limits

    for interface in ("ros2_control", "libfranka"):
        cfg = load_config(TRAIN_YAML, ["task.interface=" + interface])
        assert cfg.task.accel_fraction == cfg.task.jerk_fraction == INTERFACE_DEFAULT
        limits = task_filter_limits(cfg.task)
        deploy = FilterLimits.for_interface(FR3, interface, 1.0 / cfg.task.policy_dt)
        assert limits.interface == interface and limits.dt == deploy.dt == 0.02
        np.testing.assert_allclose(limits.accel, 3.0 if interface == "ros2_control" else 4.0)
        np.testing.assert_allclose(limits.accel, deploy.accel)
        np.testing.assert_allclose(limits.jerk, deploy.jerk)
        assert limits.hold_time == 0.0  # the training simulator holds no command

    over = task_filter_limits(load_config(TRAIN_YAML, [
        "task.interface=libfranka", "task.accel_fraction=0.1"]).task)
    np.testing.assert_allclose(over.accel, 1.0)  # 0.1 * 10 rad/s^2


def test_interface_flag_sets_task_interface(monkeypatch, capsys):
    from reach_rl_train import cli

    seen = {}

    def stop_after_config(path, overrides):
        seen["cfg"] = load_config(path, overrides)
        raise ConfigError("stop here")

    monkeypatch.setattr(cli, "load_config", stop_after_config)
    assert cli.train_main(["--interface", "libfranka"]) == 2
    assert seen["cfg"].task.interface == "libfranka"
    # Overrides between options, as a user appends a flag to a command line.
    assert cli.train_main(["run.seed=2", "--interface", "libfranka", "task.accel_fraction=0.3",
                           "--num-envs", "64", "ppo.num_epochs=3"]) == 2
    cfg = seen["cfg"]
    assert (cfg.run.seed, cfg.task.interface, cfg.task.accel_fraction, cfg.run.num_envs,
            cfg.ppo.num_epochs) == (2, "libfranka", 0.3, 64, 3)
    with pytest.raises(SystemExit):
        cli.train_main(["--interface", "ethercat"])
    assert "invalid choice: 'ethercat'" in capsys.readouterr().err


def test_print_config_shows_the_defaults_the_yaml_and_the_overrides(capsys):
    """reach-rl-train --print-config: the config a run would use, as YAML, and no training."""
    import yaml

    from reach_rl_train.cli import train_main
    from reach_rl_train.config import TrainConfig

    assert train_main(["--print-config", "--interface", "libfranka", "ppo.gamma=0.5"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = TrainConfig().to_dict()
    expected["task"]["interface"], expected["ppo"]["gamma"] = "libfranka", 0.5
    assert printed == expected
