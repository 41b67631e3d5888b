"""The exported policy file: contract v1, numerically equal to torch, refused when wrong."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from reach_rl_deploy import policy_file as contract  # noqa: E402
from reach_rl_deploy.policy_file import Policy, PolicyFileError  # noqa: E402
from reach_rl_train.actor_critic import ActorCritic, PolicyGraph  # noqa: E402
from reach_rl_train.config import TrainConfig  # noqa: E402
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
    graph = PolicyGraph(model, cfg.task.action_scale).eval()
    assert max_abs_diff(graph, path, batch=1024) <= 1e-5


def test_metadata_and_signature_follow_contract_v1(exported):
    cfg, _, path, _ = exported
    policy = Policy(path)
    info = policy.info
    assert info.robot == "fr3"
    assert info.policy_dt == pytest.approx(cfg.task.policy_dt)
    assert info.joint_names == tuple("fr3_joint%d" % i for i in range(1, 8))
    assert info.target_min == tuple(cfg.task.target_min)
    assert set(info.inputs) == set(contract.INPUT_SHAPES)
    assert info.train_config["task"]["robot"] == "fr3"
    out = policy(*[x[0].numpy() for x in example_inputs()])
    assert out.shape == (7,) and np.all(np.abs(out) <= cfg.task.action_scale)
    policy.check_matches("fr3", info.joint_names)


def test_single_calls_match_torch_one_after_another(exported):
    """``Policy.__call__`` (buffers bound to the session once) gives each call's own answer."""
    cfg, model, path, _ = exported
    graph = PolicyGraph(model, cfg.task.action_scale).eval()
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
        inputs = {n: x.numpy() for n, x in zip(contract.INPUT_SHAPES, example_inputs(batch))}
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
        "contract2.onnx": ({contract.KEY_CONTRACT: "2"}, "contract '2'"),
        "norobot.onnx": ({contract.KEY_ROBOT: None}, "metadata lacks reach_rl/robot"),
        "badnames.onnx": ({contract.KEY_JOINT_NAMES: json.dumps(["a", "b"])}, "7 names"),
        "baddt.onnx": ({contract.KEY_POLICY_DT: "nan"}, "policy_dt"),
    }
    for name, (changes, message) in cases.items():
        dst = str(tmp_path / name)
        _rewrite_metadata(path, dst, **changes)
        with pytest.raises(PolicyFileError, match=message):
            Policy(dst)
