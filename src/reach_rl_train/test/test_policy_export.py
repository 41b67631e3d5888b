"""The exported point policy file: contract 3, numerically equal to torch, refused when wrong
(pose policies: test_pose_targets.py)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from reach_rl_core import policy_file as contract  # noqa: E402
from reach_rl_core.policy_file import PolicyFileError  # noqa: E402
from reach_rl_deploy.policy_runtime import Policy  # noqa: E402
from reach_rl_train.actor_critic import ActorCritic, PolicyGraph  # noqa: E402
from reach_rl_train.config import TrainConfig, action_scales, task_filter_limits  # noqa: E402
from reach_rl_train.export import example_inputs, export_policy, max_abs_diff  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg = TrainConfig()
    torch.manual_seed(0)
    model = ActorCritic(cfg.ppo.hidden, cfg.ppo.init_std)
    with torch.no_grad():  # trained-like output layer and normaliser statistics
        model.actor[-1].weight.normal_(0, 0.1)
        model.normalizer.update(model.encoder(*example_inputs(512, seed=5)))
    path = str(tmp_path_factory.mktemp("policy") / "policy.onnx")
    diff = export_policy(model, cfg, path)
    return cfg, model, path, diff


def test_torch_and_onnxruntime_agree(exported):
    cfg, model, path, diff = exported
    assert diff <= 1e-5
    graph = PolicyGraph(model, action_scales(cfg.task), task_filter_limits(cfg.task),
                        cfg.task.policy_dt).eval()
    assert max_abs_diff(graph, path, batch=1024) <= 1e-5


def test_metadata_and_signature_follow_the_contract(exported):
    cfg, _, path, _ = exported
    policy = Policy(path)
    info = policy.info
    assert info.robot == "fr3"
    assert info.policy_dt == pytest.approx(cfg.task.policy_dt)
    assert info.joint_names == tuple("fr3_joint%d" % i for i in range(1, 8))
    assert info.target_min == tuple(cfg.task.target_min)
    assert info.inputs == contract.POINT_INPUTS  # no target_quat: a point policy
    assert info.target_type == contract.POINT
    raw = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert raw[contract.KEY_CONTRACT] == "3" and raw[contract.KEY_TARGET_TYPE] == "point"
    assert contract.KEY_ORIENTATION_RANGE not in raw
    assert info.train_config["task"]["robot"] == "fr3"
    out = policy(*[x[0].numpy() for x in example_inputs()])
    assert out.shape == (7,) and np.all(np.abs(out) <= cfg.task.action_scale)
    policy.check_matches("fr3", info.joint_names)


def test_single_calls_match_torch_one_after_another(exported):
    """``Policy.__call__`` (buffers bound to the session once) gives each call's own answer."""
    cfg, model, path, _ = exported
    graph = PolicyGraph(model, action_scales(cfg.task), task_filter_limits(cfg.task),
                        cfg.task.policy_dt).eval()
    policy = Policy(path)
    inputs = example_inputs(5, seed=3)
    with torch.no_grad():
        expected = graph(*inputs).numpy()
    for i in range(5):
        got = policy(*[x[i].numpy() for x in inputs])
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected[i], atol=1e-5)
    assert np.abs(np.diff(expected, axis=0)).max() > 1e-3  # the five answers differ


def test_dynamic_batch(exported):
    _, _, path, _ = exported
    policy = Policy(path)
    for batch in (1, 3, 100):
        inputs = {n: x.numpy() for n, x in zip(contract.POINT_INPUTS, example_inputs(batch))}
        assert policy.run_batch(**inputs).shape == (batch, 7)


def test_mismatched_robot_or_joints_are_refused(exported):
    _, _, path, _ = exported
    policy = Policy(path)
    with pytest.raises(PolicyFileError, match="trained for the fr3"):
        policy.check_matches("panda")
    with pytest.raises(PolicyFileError, match="expects joints"):
        policy.check_matches("fr3", ["joint%d" % i for i in range(1, 8)])


def _rewrite_metadata(src, dst, **changes):
    model = onnx.load(src)
    for entry in list(model.metadata_props):
        if entry.key in changes:
            if changes[entry.key] is None:
                model.metadata_props.remove(entry)
            else:
                entry.value = changes[entry.key]
    onnx.save(model, dst)


def test_bad_files_are_refused_with_a_clear_error(exported, tmp_path):
    _, _, path, _ = exported
    with pytest.raises(PolicyFileError, match="does not exist"):
        Policy(str(tmp_path / "missing.onnx"))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(open(path, "rb").read()[:500])
    with pytest.raises(PolicyFileError, match="not a readable ONNX model"):
        Policy(str(corrupt))
    cases = {
        "contract4.onnx": ({contract.KEY_CONTRACT: "4"}, "contract '4'"),
        "notype.onnx": ({contract.KEY_TARGET_TYPE: None}, "target type ''"),
        # a point file (no target_quat input) that says pose
        "pose.onnx": ({contract.KEY_TARGET_TYPE: "pose"}, "pose policy lacks the target_quat"),
        # A contract-1 file (raw goal out): refused with the command that re-exports it.
        "contract1.onnx": ({contract.KEY_CONTRACT: "1"}, "reach-rl-export .*checkpoint.pt"),
        "nolimits.onnx": ({contract.KEY_COMMAND_LIMITS: None}, "lacks reach_rl/command_limits"),
        "norobot.onnx": ({contract.KEY_ROBOT: None}, "metadata lacks reach_rl/robot"),
        "badnames.onnx": ({contract.KEY_JOINT_NAMES: json.dumps(["a", "b"])}, "7 names"),
        "baddt.onnx": ({contract.KEY_POLICY_DT: "nan"}, "policy_dt"),
    }
    for name, (changes, message) in cases.items():
        dst = str(tmp_path / name)
        _rewrite_metadata(path, dst, **changes)
        with pytest.raises(PolicyFileError, match=message):
            Policy(dst)


@pytest.fixture(scope="module")
def exported_libfranka(exported, tmp_path_factory):
    cfg, model, _, _ = exported
    franka = TrainConfig()
    franka.task.interface = "libfranka"
    path = str(tmp_path_factory.mktemp("libfranka") / "policy.onnx")
    export_policy(model, franka, path)
    return path


def _deploy(interface, **kwargs):
    """The filter limits the deploy node builds: once per 50 Hz policy step, its command hold."""
    from reach_rl_core.franka_model import FR3
    from reach_rl_core.filter_limits import FilterLimits

    return FilterLimits.for_interface(FR3, interface, 50.0, command_hold=-1.0, **kwargs)


def test_command_limits_metadata_records_the_training_filter(exported, exported_libfranka):
    _, _, path, _ = exported
    ros = Policy(path).info.command_limits
    assert isinstance(ros, contract.CommandLimits)
    assert ros.interface == "ros2_control" and ros.velocity_fraction == pytest.approx(0.9)
    np.testing.assert_allclose(ros.accel, [3.0] * 7)
    np.testing.assert_allclose(ros.jerk, [500.0] * 7)
    assert ros.brake_margin == pytest.approx(0.05)
    franka = Policy(exported_libfranka).info.command_limits
    assert franka.interface == "libfranka"
    np.testing.assert_allclose(franka.accel, _deploy("libfranka").accel)
    np.testing.assert_allclose(franka.jerk, _deploy("libfranka").jerk)
    raw = {p.key: p.value for p in onnx.load(exported_libfranka).metadata_props}
    assert set(json.loads(raw[contract.KEY_COMMAND_LIMITS])) == {
        "interface", "velocity_fraction", "accel", "jerk", "brake_margin"}


def test_check_command_limits_accepts_the_same_or_looser_deploy(exported, exported_libfranka):
    contract.check_command_limits(Policy(exported[2]).info, _deploy("ros2_control"))
    contract.check_command_limits(Policy(exported[2]).info, _deploy("ros2_control", velocity_fraction=1))
    contract.check_command_limits(Policy(exported_libfranka).info, _deploy("libfranka"))


def test_files_from_before_the_speed_cap_was_retired_still_deploy_and_evaluate(exported, tmp_path):
    """Their command limits carry a "speed_cap" (their graph applies it) and their training
    config task.max_stop_time and task.control_rate: read, checked and judged without them."""
    from reach_rl_train.evaluate import config_of

    _, _, path, _ = exported
    info = Policy(path).info
    limits = dict(info.command_limits._asdict(), accel=[2.0] * 7, speed_cap=[0.26] * 7)
    config = dict(info.train_config)
    config["task"] = dict(config["task"], max_stop_time=0.2, control_rate=1000.0)
    old = str(tmp_path / "old.onnx")
    _rewrite_metadata(path, old, **{contract.KEY_COMMAND_LIMITS: json.dumps(limits),
                                    contract.KEY_TRAIN_CONFIG: json.dumps(config)})
    policy = Policy(old)
    np.testing.assert_allclose(policy.info.command_limits.accel, 2.0)
    contract.check_command_limits(policy.info, _deploy("ros2_control"))  # tighter: accepted
    assert config_of(policy).task.robot == "fr3"


def test_check_command_limits_refuses_looser_training(exported, exported_libfranka):
    ros, franka = Policy(exported[2]).info, Policy(exported_libfranka).info
    cases = [
        (ros, _deploy("libfranka"), "trained for the ros2_control interface, the deploy runs "
                                    "libfranka: retrain with reach-rl-train --interface libfranka"),
        (franka, _deploy("ros2_control"), "--interface ros2_control"),
        (franka, _deploy("libfranka", accel_fraction=0.1),
         r"joint 1 acceleration %g rad/s\^2 \(deploy 1\)" % franka.command_limits.accel[0]),
        (ros, _deploy("ros2_control", velocity_fraction=0.5), r"velocity_fraction 0\.9 \(deploy 0\.5\)"),
    ]
    for info, limits, message in cases:
        with pytest.raises(PolicyFileError, match=message):
            contract.check_command_limits(info, limits)


def test_malformed_command_limits_are_refused(exported, tmp_path):
    """Contract 2 requires the key (its absence is refused with the other cases above)."""
    _, _, path, _ = exported
    bad = str(tmp_path / "bad.onnx")
    _rewrite_metadata(path, bad, **{contract.KEY_COMMAND_LIMITS: json.dumps({"interface": "x"})})
    with pytest.raises(PolicyFileError, match="malformed metadata"):
        Policy(bad)
