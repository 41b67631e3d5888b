"""reach-rl-train task.target=pose end to end at the smallest scale: it trains, judges the
orientation beside the position, and exports a contract-3 pose file that onnxruntime runs as
torch does; reach-rl-eval reports the file's orientation figures."""
import contextlib
import io
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from reach_rl_core import policy_file as contract  # noqa: E402
from reach_rl_deploy.policy_runtime import Policy  # noqa: E402
from reach_rl_train.actor_critic import ActorCritic, PolicyGraph  # noqa: E402
from reach_rl_train.cli import eval_main, train_main  # noqa: E402
from reach_rl_train.config import action_scales, config_from, task_filter_limits  # noqa: E402
from reach_rl_train.evaluate import config_of  # noqa: E402
from reach_rl_train.export import example_inputs, max_abs_diff  # noqa: E402

# A few seconds: 2 iterations of 64 arms, a 16-unit network, 8 held-out targets at the end;
# with the IK prior (off by default), so that its export is checked too.
TINY_POSE = ["task.target=pose", "task.down_cone=0.2", "task.targets_per_episode=2",
             "ppo.ik_prior_accel=0.8",
             "run.num_envs=64", "ppo.num_steps=8", "ppo.hidden=[16]", "run.threads=2",
             "run.checkpoint_every=10", "goal.eval_every=2", "goal.eval_targets=8",
             "goal.eval_in_a_row=2", "goal.screen_train_success=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pose") / "policy.onnx")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert train_main(["--device", "cpu", "--max-iterations", "2", "--out", out]
                          + TINY_POSE) == 0
    return out, buffer.getvalue().splitlines()


def test_pose_training_prints_orientation_figures(trained):
    _, lines = trained
    assert lines[0].startswith("training fr3 pose reach on cpu"), lines
    assert "median orientation error <= 1.0 deg" in lines[0]
    last = [line for line in lines if line.startswith("it    2/2")][0]
    assert " deg " in last and "s to 1 cm and 5 deg, held from " in last and "(it 2)" in last, last
    assert any("not reached in 2 iterations" in line and "deg" in line for line in lines), lines


def test_the_pose_file_is_contract_3_with_its_target_type_and_orientation_range(trained):
    path, _ = trained
    model = onnx.load(path)
    raw = {p.key: p.value for p in model.metadata_props}
    assert raw[contract.KEY_CONTRACT] == "3"
    assert raw[contract.KEY_TARGET_TYPE] == "pose"
    assert json.loads(raw[contract.KEY_ORIENTATION_RANGE]) == {"down_cone": 0.2}
    assert [i.name for i in model.graph.input] == list(contract.INPUT_SHAPES)
    info = Policy(path).info
    assert (info.target_type, info.down_cone) == ("pose", 0.2)
    assert info.inputs == tuple(contract.INPUT_SHAPES)
    cfg = config_of(Policy(path))
    assert (cfg.task.target, cfg.task.down_cone) == ("pose", 0.2)


def test_onnxruntime_runs_the_pose_file_as_torch_does(trained):
    path, _ = trained
    state = torch.load(os.path.join(os.path.splitext(path)[0] + "_logs", "checkpoint.pt"))
    cfg = config_from([(state["config"], "checkpoint")])
    model = ActorCritic.from_config(cfg)
    model.load_state_dict(state["model"])
    graph = PolicyGraph(model, action_scales(cfg.task), task_filter_limits(cfg.task),
                        cfg.task.policy_dt, cfg.ppo.deterministic_command).eval()
    # (the file holds the best judged weights: the last iteration's, the only one judged)
    assert max_abs_diff(graph, path, batch=512) <= 1e-5
    # The IK prior (ppo.ik_prior_accel) is in the file: without it the same weights differ.
    no_prior = ActorCritic.from_config(config_from([(state["config"], "checkpoint"),
                                                    ({"ppo": {"ik_prior_accel": 0.0}}, "test")]))
    no_prior.load_state_dict(state["model"])
    assert max_abs_diff(PolicyGraph(no_prior, action_scales(cfg.task), task_filter_limits(cfg.task),
                                    cfg.task.policy_dt, cfg.ppo.deterministic_command).eval(),
                        path, batch=512) > 1e-2
    # One observation at a time, as the deploy node calls it.
    inputs = example_inputs(3, seed=4, target_type="pose")
    with torch.no_grad():
        expected = graph(*inputs).numpy()
    policy = Policy(path)
    for i in range(3):
        joint_pos, joint_vel, target_pos, target_quat, prev_command = (x[i].numpy() for x in inputs)
        got = policy(joint_pos, joint_vel, target_pos, prev_command, target_quat=target_quat)
        np.testing.assert_allclose(got, expected[i], atol=1e-5)


def test_eval_reports_the_orientation_of_a_pose_file(trained, capsys):
    path, _ = trained
    assert eval_main([path, "--targets", "8", "--in-a-row", "2"]) == 0
    out = capsys.readouterr().out
    assert "pose targets, down cone 0.200 rad" in out
    assert out.count("orientation error median") == 2 and "time to 1 cm and 5 deg" in out
