"""torchrun target of test_distributed_training: trains as ``reach-rl-train`` does (a Runner
from config overrides), then writes this rank's digest of its weights, normaliser statistics
and optimiser state to ``<out_dir>/rank<R>.json``.

    torchrun --nproc_per_node=2 test/distributed_worker.py OUT_DIR section.key=value ...
"""
import hashlib
import json
import os
import sys

from reach_rl_train.config import load_config
from reach_rl_train.runner import Runner


def digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(out_dir: str, overrides) -> None:
    runner = Runner(load_config(None, overrides), progress=lambda line: print(line, flush=True))
    runner.train()
    optimizer = runner.ppo.optimizer.state_dict()["state"]
    result = {
        "rank": runner.ranks.rank,
        "world_size": runner.ranks.world_size,
        "iteration": runner.iteration,
        "model": digest(runner.model.state_dict().values()),
        "normalizer_count": float(runner.model.normalizer.count),
        "optimizer": digest(t for s in optimizer.values() for t in s.values() if hasattr(t, "numpy")),
        "learning_rate": runner.ppo.learning_rate,
    }
    with open(os.path.join(out_dir, "rank%d.json" % runner.ranks.rank), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
