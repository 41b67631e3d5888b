"""Console entry points: ``reach-rl-train`` and ``reach-rl-eval``."""
import argparse
import os
import sys
from typing import List, Optional

from reach_rl_train.config import ConfigError, load_config


def default_config_path() -> Optional[str]:
    """The package's ``config/train.yaml``: source tree first, then the installed share dir."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(here, "..", "..", "config", "train.yaml")]
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


def train_main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reach-rl-train",
        description="Train a Franka reach policy with PPO on the built-in simulator and export "
                    "it as a contract-v1 ONNX policy file.")
    parser.add_argument("--config", help="training YAML (default: the package's config/train.yaml)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (overrides run.device)")
    parser.add_argument("--num-envs", type=int, help="parallel simulated arms (run.num_envs)")
    parser.add_argument("--max-iterations", type=int, help="PPO iterations (run.max_iterations)")
    parser.add_argument("--out", help="policy file to write, .onnx (run.out)")
    parser.add_argument("--resume", help="checkpoint to continue from (run.resume)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="config overrides, e.g. ppo.learning_rate=3e-4 task.robot=panda")
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    for flag, key in (("device", "run.device"), ("num_envs", "run.num_envs"),
                      ("max_iterations", "run.max_iterations"), ("out", "run.out"),
                      ("resume", "run.resume")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append("%s=%s" % (key, value))
    try:
        cfg = load_config(args.config or default_config_path(), overrides)
        from reach_rl_train.runner import Runner  # torch import is slow: after arguments are checked

        runner = Runner(cfg, progress=lambda line: print(line, flush=True))
    except (ConfigError, ValueError) as exc:
        print("reach-rl-train: error: %s" % exc, file=sys.stderr)
        return 2
    print("training %s reach on %s: %d envs x %d steps, %d iterations -> %s"
          % (cfg.task.robot, runner.device, cfg.run.num_envs, cfg.ppo.num_steps,
             cfg.run.max_iterations, cfg.run.out), flush=True)
    try:
        runner.train()
    except KeyboardInterrupt:
        return 130
    return 0


def eval_main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reach-rl-eval",
        description="Evaluate a policy file on held-out targets in the built-in simulator, "
                    "nominal and under actuator lag, observation latency and joint noise.")
    parser.add_argument("policy", help="contract-v1 ONNX policy file")
    parser.add_argument("--targets", type=int, default=1000, help="held-out targets per condition")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the held-out targets")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    from reach_rl_deploy.policy_file import PolicyFileError
    from reach_rl_train.evaluate import evaluate_file, format_results

    try:
        results = evaluate_file(args.policy, args.targets, args.seed)
    except (PolicyFileError, ValueError) as exc:
        print("reach-rl-eval: error: %s" % exc, file=sys.stderr)
        return 2
    print(format_results(results))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0
