"""Training without its optional extras (tensorboard, matplotlib): it says once what is missing
and goes on to export a policy."""
import builtins

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (make setup)")

from reach_rl_train.config import load_config  # noqa: E402
from reach_rl_train.runner import Runner  # noqa: E402


def test_training_goes_on_without_tensorboard_and_matplotlib(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def without_extras(name, *args, **kwargs):
        if name.startswith(("torch.utils.tensorboard", "tensorboard", "matplotlib")):
            raise ImportError("No module named %r (hidden by the test)" % name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_extras)
    out = str(tmp_path / "policy.onnx")
    cfg = load_config(overrides=["run.num_envs=8", "run.max_iterations=2", "run.out=" + out,
                                 "ppo.num_steps=4"])
    lines = []
    Runner(cfg, progress=lines.append).train()
    text = "\n".join(lines)
    assert text.count("tensorboard is not installed") == 1
    assert text.count("matplotlib is not installed") == 1
    assert (tmp_path / "policy.onnx").is_file()
