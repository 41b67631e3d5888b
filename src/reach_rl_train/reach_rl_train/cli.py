"""Console entry points: ``reach-rl-train`` and ``reach-rl-eval``.

``python -m reach_rl_train.cli ARGS`` is ``reach-rl-train ARGS`` (how ``train_node`` runs the
trainer under any interpreter).
"""
import argparse
import os
import signal
import sys
from typing import List, Optional

from reach_rl_core.filter_limits import INTERFACES
from reach_rl_core.policy_file import POSE, TARGET_TYPES
from reach_rl_train.config import ConfigError, GoalConfig, TaskConfig, load_config


def default_config_path() -> Optional[str]:
    """The package's ``config/train.yaml``: source tree first, then the installed share dir."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(here, "..", "config", "train.yaml")]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(os.path.join(get_package_share_directory("reach_rl_train"), "config",
                                       "train.yaml"))
    except Exception:  # no ament index (plain pip install): fall back to built-in defaults
        pass
    for path in candidates:
        if os.path.isfile(path):
            return os.path.normpath(path)
    return None


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reach-rl-train", description=(
        "Train a Franka reach policy with PPO on the built-in simulator and export it as a "
        "contract-3 ONNX policy file (task.target=pose: position and orientation targets)."))
    parser.add_argument("--config", help="training YAML (default: the package's config/train.yaml)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (overrides run.device)")
    parser.add_argument("--num-envs", type=int, help="parallel simulated arms (run.num_envs)")
    parser.add_argument("--max-iterations", type=int, help="PPO iterations (run.max_iterations)")
    parser.add_argument("--out", help="policy file to write, .onnx (run.out)")
    parser.add_argument("--resume", help="checkpoint to continue from (run.resume)")
    parser.add_argument("--until-goal", action="store_true",
                        help="judge the policy on held-out targets every goal.eval_every "
                             "iterations, stop at the goal (section goal) or max_iterations, "
                             "export the best (run.until_goal=true)")
    parser.add_argument("--interface", choices=INTERFACES,
                        help="deploy interface whose safety filter limits the commands "
                             "(task.interface; default %s)" % TaskConfig.interface)
    parser.add_argument("--target", choices=TARGET_TYPES,
                        help="target type: point, or pose (position and the hand's orientation, "
                             "pointing down with any yaw) (task.target; default %s)"
                             % TaskConfig.target)
    parser.add_argument("--viewer", action="store_true",
                        help="Isaac Gym backend: open its viewer (task.isaacgym_viewer=true)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the config this command line resolves to (the defaults of "
                             "reach_rl_train/config.py, the YAML, the overrides) and exit")
    parser.add_argument("--progress-json", action="store_true",
                        help="also print one machine-readable line per event (start, iteration, "
                             "done; see reach_rl_train.progress_protocol)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="config overrides, e.g. ppo.learning_rate=3e-4 task.robot=panda")
    return parser


# reach-rl-train's options that stand for a config key
FLAG_KEYS = (("device", "run.device"), ("num_envs", "run.num_envs"),
             ("max_iterations", "run.max_iterations"), ("out", "run.out"),
             ("resume", "run.resume"), ("interface", "task.interface"),
             ("target", "task.target"))


def train_overrides(args) -> List[str]:
    """The config overrides the command line gives: its own, then the options' keys."""
    overrides = list(args.overrides)
    overrides += ["%s=%s" % (key, getattr(args, flag)) for flag, key in FLAG_KEYS
                  if getattr(args, flag) is not None]
    if args.viewer:
        overrides.append("task.isaacgym_viewer=true")
    if args.until_goal:
        overrides.append("run.until_goal=true")
    return overrides


def _announce(cfg, runner) -> None:
    """The run's one-line header (rank 0 only)."""
    ranks = runner.ranks
    if not ranks.is_main:
        return
    job = (" x %d ranks (torchrun; rank 0 logs, evaluates and exports)" % ranks.world_size
           if ranks.world_size > 1 else "")
    goal = (", until %s" % (runner.judge.goal,)) if runner.judge else ""
    kind = " pose" if cfg.task.target == POSE else ""  # (point: as before pose targets came)
    print("training %s%s reach on %s%s: %d envs x %d steps, up to %d iterations%s -> %s"
          % (cfg.task.robot, kind, runner.device, job, cfg.run.num_envs, cfg.ppo.num_steps,
             cfg.run.max_iterations, goal, cfg.run.out), flush=True)


def train_main(argv: Optional[List[str]] = None) -> int:
    # overrides may come before, between or after the options
    args = _train_parser().parse_intermixed_args(argv)
    try:
        cfg = load_config(args.config or default_config_path(), train_overrides(args))
        if args.print_config:
            import yaml

            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return 0
        if cfg.task.backend == "isaacgym":  # Isaac Gym refuses to load after torch
            from reach_rl_train.isaacgym_backend import import_isaacgym

            import_isaacgym()
        from reach_rl_train.runner import Runner  # torch loads slowly: after the arguments

        runner = Runner(cfg, progress=lambda line: print(line, flush=True))
    except (ConfigError, ValueError, ImportError) as exc:
        print("reach-rl-train: error: %s" % exc, file=sys.stderr)
        return 2
    _announce(cfg, runner)
    emit = _progress_printer(args.progress_json and runner.ranks.is_main)
    emit("start", max_iterations=cfg.run.max_iterations, num_envs=cfg.run.num_envs,
         num_steps=cfg.ppo.num_steps, device=str(runner.device), backend=cfg.task.backend,
         policy=os.path.abspath(cfg.run.out))

    def on_iteration(_runner, stats):
        emit("iteration", max_iterations=cfg.run.max_iterations, **stats)
        return False

    # A shell starts background jobs with SIGINT ignored, and a child keeps that; Ctrl-C,
    # `kill -INT` and train_node's forwarded Ctrl-C must still stop the run with its policy.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupted = False
    try:
        runner.train(on_iteration=on_iteration)
    except KeyboardInterrupt:
        interrupted = True
    emit("done", iteration=runner.iteration, policy=os.path.abspath(cfg.run.out),
         checkpoint=os.path.abspath(runner.checkpoint_path()), interrupted=interrupted,
         goal_reached=runner.goal_reached)
    return 130 if interrupted else 0


def _progress_printer(enabled: bool):
    """``emit(event, **fields)``: prints a progress_protocol line when enabled, else nothing."""
    if not enabled:
        return lambda event, **fields: None
    from reach_rl_train.progress_protocol import format_event

    return lambda event, **fields: print(format_event(event, **fields), flush=True)


def eval_main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="reach-rl-eval", description=(
        "Evaluate a policy file on held-out targets in the built-in simulator, nominal and "
        "under actuator lag, observation latency and joint noise."))
    goal = GoalConfig()  # training judges its policy as this command judges files
    parser.add_argument("policy", help="ONNX policy file (contract 3, or 2: point)")
    parser.add_argument("--targets", type=int, default=goal.eval_targets,
                        help="held-out targets per condition (default %d)" % goal.eval_targets)
    parser.add_argument("--seed", type=int, default=goal.eval_seed,
                        help="seed of the held-out targets (default %d)" % goal.eval_seed)
    parser.add_argument("--in-a-row", type=int, default=goal.eval_in_a_row, metavar="N",
                        help="targets in a row per simulated arm, each from where the last left "
                             "it, the first from the start pose (default %d)" % goal.eval_in_a_row)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    from reach_rl_core.policy_file import PolicyFileError
    from reach_rl_train.evaluate import evaluate_file, format_results

    try:
        if args.in_a_row < 1:
            raise ValueError("--in-a-row must be >= 1, got %d" % args.in_a_row)
        results = evaluate_file(args.policy, args.targets, args.seed, args.in_a_row)
    except (PolicyFileError, ValueError) as exc:
        print("reach-rl-eval: error: %s" % exc, file=sys.stderr)
        return 2
    print(format_results(results))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def export_main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="reach-rl-export", description=(
        "Export a training checkpoint as a policy file of the current contract, without "
        "retraining (e.g. a contract-1 run's <out>_logs/checkpoint.pt)."))
    parser.add_argument("checkpoint", help="checkpoint.pt written by reach-rl-train")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    args = parser.parse_args(argv)
    import torch

    from reach_rl_train.actor_critic import ActorCritic
    from reach_rl_train.config import ConfigError, config_from
    from reach_rl_train.export import export_policy

    try:
        if not os.path.isfile(args.checkpoint):
            raise ValueError("checkpoint %s does not exist" % args.checkpoint)
        state = torch.load(args.checkpoint, map_location="cpu")
        cfg = config_from([(state["config"], args.checkpoint)])
        model = ActorCritic.from_config(cfg)
        model.load_state_dict(state["model"])
    except (ConfigError, ValueError, KeyError, RuntimeError) as exc:
        print("reach-rl-export: error: %s" % exc, file=sys.stderr)
        return 2
    error = export_policy(model.eval(), cfg, args.out)
    print("wrote %s (%s interface, torch vs onnxruntime max |diff| %.1e)"
          % (args.out, cfg.task.interface, error))
    return 0


if __name__ == "__main__":
    sys.exit(train_main())
