"""How much a short training's outcome depends on its seed: trains one policy per seed with the
same config and prints each one's held-out median final error (the measure test_training.py
judges, ``reach_rl_train.evaluate.median_final_error_mm``), next to an untrained policy's.

    PYTHONPATH=src python bench/seed_spread.py --seeds 1 2 3 4 --iterations 60 [overrides]
"""
import argparse
import os
import sys
import tempfile

# A short CPU training: 256 arms, 4 targets an episode, no goal checks.
QUICK = ["run.num_envs=256", "run.threads=2", "run.checkpoint_every=10", "run.until_goal=false",
         "task.targets_per_episode=4", "reward.joint_limit=2", "reward.limit_margin=0.3"]

from reach_rl_train.config import load_config  # noqa: E402
from reach_rl_train.export import export_policy  # noqa: E402
from reach_rl_train.runner import Runner  # noqa: E402
from reach_rl_train.evaluate import median_final_error_mm as median_error  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="on top of QUICK")
    args = parser.parse_args(argv)
    out = tempfile.mkdtemp(prefix="seed_spread_")
    base = QUICK + ["run.max_iterations=%d" % args.iterations] + args.overrides
    untrained = load_config(None, base + ["run.out=%s" % os.path.join(out, "untrained.onnx")])
    export_policy(Runner(untrained, progress=lambda _: None).model, untrained, untrained.run.out)
    print("untrained: %.1f mm" % median_error(untrained.run.out), flush=True)
    for seed in args.seeds:
        cfg = load_config(None, base + ["run.seed=%d" % seed,
                                        "run.out=%s" % os.path.join(out, "seed%d.onnx" % seed)])
        Runner(cfg, progress=lambda _: None).train()
        print("seed %d, %d iterations %s: %.1f mm" % (seed, args.iterations, " ".join(args.overrides),
                                                      median_error(cfg.run.out)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
