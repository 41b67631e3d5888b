"""reach-rl-train under torchrun: two gloo ranks on the CPU train one policy, bit-identical on
both ranks, that learns; a rank that dies ends the job with its error."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

torch = pytest.importorskip("torch")

from reach_rl_train.config import load_config  # noqa: E402
from reach_rl_train.distributed import Ranks, device_for_rank, ranks_from_environment  # noqa: E402
from reach_rl_train.runner import Runner  # noqa: E402
from test_training import ITERATIONS, SMALL, median_error  # noqa: E402

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_worker.py")
ENVS_PER_RANK = 128  # two ranks: the single-process test's 256 arms


def torchrun_env():
    import reach_rl_train

    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(reach_rl_train.__file__)))
    env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["GLOO_SOCKET_IFNAME"] = "lo"  # both ranks on this machine
    env["OMP_NUM_THREADS"] = "1"
    return env


def torchrun(nproc, args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node=%d" % nproc] + args


def test_ranks_come_from_torchrun_environment():
    assert ranks_from_environment({}) == Ranks(0, 0, 1)
    ranks = ranks_from_environment({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert ranks == Ranks(3, 1, 4) and not ranks.is_main
    assert device_for_rank("cuda", ranks) == "cuda:1"
    assert device_for_rank("cpu", ranks) == "cpu"
    assert device_for_rank("cuda:0", Ranks()) == "cuda:0"
    with pytest.raises(ValueError, match="RANK 4 must be in"):
        ranks_from_environment({"RANK": "4", "WORLD_SIZE": "4"})


def test_two_gloo_ranks_train_one_policy_that_learns(tmp_path):
    out = tmp_path / "policy.onnx"
    overrides = SMALL + ["run.num_envs=%d" % ENVS_PER_RANK, "run.threads=1",
                         "run.max_iterations=%d" % ITERATIONS, "run.out=%s" % out]
    start = time.monotonic()
    proc = subprocess.run(torchrun(2, [WORKER, str(tmp_path)] + overrides), env=torchrun_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    print("2 ranks x %d arms, %d iterations: %.1f s" % (ENVS_PER_RANK, ITERATIONS,
                                                         time.monotonic() - start))
    assert proc.returncode == 0, proc.stdout
    ranks = [json.load(open(str(tmp_path / ("rank%d.json" % r)))) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["iteration"] for r in ranks] == [ITERATIONS, ITERATIONS]
    for key in ("model", "optimizer", "learning_rate", "normalizer_count"):
        assert ranks[0][key] == ranks[1][key], key  # bit-identical weights and state
    # The normaliser saw both ranks' arms at every rollout step.
    assert ranks[0]["normalizer_count"] == 2 * ENVS_PER_RANK * 24 * ITERATIONS
    # Rank 0 alone logs: one progress line per iteration.
    assert len(re.findall(r"^it +%d/%d " % (ITERATIONS, ITERATIONS), proc.stdout, re.M)) == 1
    assert re.search(r"^it +1/%d +\| +\d+ steps/s" % ITERATIONS, proc.stdout, re.M)

    cfg = load_config(None, SMALL + ["run.out=%s" % (tmp_path / "untrained.onnx")])
    from reach_rl_train.export import export_policy

    untrained = Runner(cfg, progress=lambda _: None, ranks=Ranks())
    export_policy(untrained.model, cfg, cfg.run.out)
    before, after = median_error(cfg.run.out), median_error(str(out))
    print("median final error: untrained %.1f mm, 2 ranks %.1f mm" % (before, after))
    assert after < 0.6 * before, (before, after)

    # A checkpoint continues only with the number of ranks that wrote it.
    checkpoint = tmp_path / "policy_logs" / "checkpoint.pt"
    with pytest.raises(ValueError, match=r"trained by 2 rank\(s\), this job has 1"):
        Runner(load_config(None, SMALL + ["run.resume=%s" % checkpoint,
                                          "run.out=%s" % (tmp_path / "resumed.onnx")]),
               progress=lambda _: None, ranks=Ranks())


def _rank_pid(parent: int, rank: int) -> int:
    """PID of the torchrun worker of ``rank`` under the agent ``parent``."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            with open("/proc/%s/environ" % name, "rb") as f:
                env = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if b"RANK=%d" % rank in env:
            return int(name)
    raise AssertionError("no worker of rank %d under pid %d" % (rank, parent))


def test_a_dead_rank_ends_the_job_with_its_error(tmp_path):
    cmd = torchrun(2, ["-m", "reach_rl_train.cli", "--device", "cpu", "--num-envs", "32",
                       "--max-iterations", "100000", "--out", str(tmp_path / "p.onnx"),
                       "run.threads=1", "run.dist_timeout_s=20"])
    proc = subprocess.Popen(cmd, env=torchrun_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    started = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if re.match(r"it +2/", line):
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "".join(lines)
        victim = _rank_pid(proc.pid, 1)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        returncode = proc.wait(60)
        elapsed = time.monotonic() - killed
        reader.join(5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = "".join(lines)
    print("job ended %.1f s after rank 1 was killed, exit status %d" % (elapsed, returncode))
    assert returncode != 0, output
    assert elapsed < 30, output
    # torchrun's report names the rank that failed and why.
    assert re.search(r"rank\s*:\s*1 \(local_rank: 1\)", output), output
    assert "SIGKILL" in output, output
