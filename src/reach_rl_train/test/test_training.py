"""reach-rl-train end to end at small scale: it learns, writes every artefact, and resumes."""
import os

import pytest

torch = pytest.importorskip("torch")

from reach_rl_deploy.policy_runtime import Policy  # noqa: E402
from reach_rl_train.cli import eval_main, train_main  # noqa: E402
from reach_rl_train.config import RandomizationConfig  # noqa: E402
from reach_rl_train.evaluate import (HELD_KEY, TIME_KEY, config_of, held_times,  # noqa: E402
                                     median_final_error_mm, onnx_actor, run_condition)
from reach_rl_train.export import export_policy  # noqa: E402
from reach_rl_train.held_out import Goal, better  # noqa: E402
from reach_rl_train.runner import Runner  # noqa: E402
from reach_rl_train.config import load_config  # noqa: E402

NOMINAL = RandomizationConfig(enabled=False)
# 4 targets an episode and a milder joint-limit term: a few dozen iterations under the default
# limit term (weight 10 over 0.4 rad), or at the since retired ros2_control speed cap, learned
# too little to show here. ITERATIONS: at 40 the outcome hung on the seed and on float rounding
# (median error 13-316 mm over seeds, untrained ~312 mm); at 60 four seeds gave 21-45 mm.
ITERATIONS = 60
SMALL = ["run.num_envs=256", "run.threads=2", "run.checkpoint_every=10", "run.until_goal=false",
         "task.targets_per_episode=4", "reward.joint_limit=2", "reward.limit_margin=0.3"]


median_error = median_final_error_mm


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("train") / "policy.onnx")
    assert train_main(["--device", "cpu", "--max-iterations", str(ITERATIONS), "--out", out] + SMALL) == 0
    return out


def test_training_writes_policy_checkpoint_logs_and_curve(trained):
    logs = os.path.splitext(trained)[0] + "_logs"
    assert os.path.isfile(trained)
    assert os.path.isfile(os.path.join(logs, "checkpoint.pt"))
    assert os.path.isfile(os.path.join(logs, "training_curve.png"))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(logs))


def test_training_learns_to_move_toward_targets(trained, tmp_path):
    cfg = load_config(None, SMALL + ["run.out=%s" % (tmp_path / "untrained.onnx")])
    untrained = Runner(cfg, progress=lambda _: None)
    export_policy(untrained.model, cfg, cfg.run.out)
    before, after = median_error(cfg.run.out), median_error(trained)
    assert after < 0.6 * before, (before, after)


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    logs = os.path.splitext(trained)[0] + "_logs"
    out = str(tmp_path / "resumed.onnx")
    cfg = load_config(None, SMALL + ["run.max_iterations=%d" % (ITERATIONS + 2), "run.out=%s" % out,
                                     "run.resume=%s" % os.path.join(logs, "checkpoint.pt")])
    runner = Runner(cfg, progress=lambda _: None)
    assert runner.iteration == ITERATIONS
    runner.train()
    assert runner.iteration == ITERATIONS + 2 and os.path.isfile(out)


def test_eval_cli_reports_both_conditions(trained, capsys):
    assert eval_main([trained, "--targets", "50"]) == 0
    out = capsys.readouterr().out
    assert "nominal:" in out and "lag 30 ms" in out and "success" in out
    assert out.count("(held from ") == 2


def test_a_target_is_held_from_its_last_entry():
    # columns: entered late and stayed; in, out, in again; in but out at the end; in throughout
    success = torch.tensor([[0, 0, 1, 1, 1], [1, 0, 1, 1, 1], [0, 1, 1, 1, 0],
                            [1, 1, 1, 1, 1]], dtype=torch.float32).T
    held = held_times(success, 0.02)
    torch.testing.assert_close(held[[0, 1, 3]], torch.tensor([0.06, 0.06, 0.02]))
    assert torch.isnan(held[2])


def test_eval_in_a_row_runs_long_sequences_and_reports_joint_limit_distance(trained, capsys):
    policy = Policy(trained)
    cfg = config_of(policy)
    assert cfg.task.interface == "ros2_control"
    long_run = run_condition(onnx_actor(policy), cfg, NOMINAL, 20, seed=5, in_a_row=10)
    assert long_run["targets"] == 20 and long_run["in_a_row"] == 10
    assert 0.0 <= long_run["min_limit_distance_rad"] < 3.0
    assert 1 <= long_run["min_limit_distance_joint"] <= 7
    assert long_run[HELD_KEY] >= long_run[TIME_KEY["point"]]  # never before the first entry
    assert eval_main([trained, "--targets", "12", "--in-a-row", "6"]) == 0
    out = capsys.readouterr().out
    assert "12 targets, 6 in a row" in out and "rad from limits" in out
    assert eval_main([trained, "--in-a-row", "0"]) == 2


def test_eval_cli_refuses_a_non_policy(tmp_path, capsys):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_text("not a model")
    assert eval_main([str(bogus)]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err


# (judged at every due iteration: no rollout-success gate, no cap on the time judging; 60
# targets: no screen)
UNTIL_GOAL = SMALL + ["run.until_goal=true", "goal.eval_every=3", "goal.eval_targets=60",
                      "goal.eval_in_a_row=2", "run.max_iterations=9", "goal.screen_train_success=0",
                      "goal.eval_share=1"]


def test_until_goal_stops_at_the_first_evaluation_that_meets_the_goal(tmp_path):
    lines = []
    cfg = load_config(None, UNTIL_GOAL + ["goal.success=0", "goal.median_error_mm=10000",
                                          "goal.median_time_s=0", "run.out=%s" % (tmp_path / "p.onnx")])
    runner = Runner(cfg, progress=lines.append)
    runner.train()
    assert runner.iteration == 3 and runner.goal_reached
    assert any(line.startswith("goal reached at iteration 3 after") for line in lines), lines
    assert any("held-out" in line for line in lines if line.startswith("it    3/9")), lines
    assert os.path.isfile(cfg.run.out)


def test_until_goal_runs_to_max_iterations_and_exports_the_best(tmp_path):
    lines = []
    cfg = load_config(None, UNTIL_GOAL + ["goal.success=1", "goal.median_error_mm=0.001",
                                          "run.out=%s" % (tmp_path / "p.onnx")])
    runner = Runner(cfg, progress=lines.append)
    runner.train()
    assert runner.iteration == 9 and not runner.goal_reached
    judged = [h for h in runner.history if "held_out_success_rate" in h]
    assert [h["iteration"] for h in judged] == [3, 6, 9]
    goal = Goal.of(cfg)  # success 1, 0.001 mm, 1.0 s to 1 cm (the interface's)
    assert goal.median_time_s == 1.0

    def rank(h):  # more criteria met, then success, then error
        m = {k[len("held_out_"):]: v for k, v in h.items() if k.startswith("held_out_")}
        return goal.met(m), m["success_rate"], -m["median_final_error_mm"]

    best = max(judged, key=rank)
    assert runner.judge.best["iteration"] == best["iteration"]
    assert any("not reached in 9 iterations" in line and "the best, iteration %d" % best["iteration"]
               in line for line in lines), lines
    # The file holds the best weights: judged the same way, it scores what the best scored.
    policy = Policy(cfg.run.out)
    g = cfg.goal
    m = run_condition(onnx_actor(policy), cfg, NOMINAL, g.eval_targets, g.eval_seed,
                      in_a_row=g.eval_in_a_row)
    assert m["median_final_error_mm"] == pytest.approx(best["held_out_median_final_error_mm"], rel=1e-3)


def test_the_best_evaluation_meets_more_of_the_goal_first():
    goal = Goal(success=0.99, median_error_mm=2.0, median_time_s=1.0)
    slow = {"success_rate": 1.0, "median_final_error_mm": 1.5, "median_time_to_1cm_s": 0.90,
            "median_time_held_s": 1.10}
    fast = {"success_rate": 1.0, "median_final_error_mm": 1.6, "median_time_to_1cm_s": 0.98,
            "median_time_held_s": 0.98}
    assert goal.met(slow) == 2 and goal.reached(fast)
    assert better(fast, slow, goal) and not better(slow, fast, goal)
    # Without a time criterion the lower error wins.
    untimed = goal._replace(median_time_s=0.0)
    assert better(slow, fast, untimed)


def test_the_held_out_judge_runs_in_the_built_in_simulator_whatever_trained():
    # Isaac Gym is not installed here: a judge that built the training's own simulator would
    # raise instead of judging.
    cfg = load_config(None, ["task.backend=isaacgym"])
    still = run_condition(lambda obs: torch.zeros(obs.shape[0], 7), cfg, NOMINAL, 8, seed=1,
                          in_a_row=4)
    assert still["targets"] == 8 and still["success_rate"] < 0.5
