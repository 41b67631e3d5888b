"""The trained policies that reach_rl_deploy's tests deploy (pytest fixtures)."""
import os
import re

import pytest

from source_tree import REPO

# A policy good enough to reach targets within 1 cm: the default CPU training (config/train.yaml,
# about 3 min here), once per test session, run the way a roboticist runs it: train_node as its
# own process, the trainer as its child. REACH_RL_TEST_POLICY=/path/to/policy.onnx reuses a file
# trained earlier (e.g. runs/demo/policy.onnx, while iterating on deploy tests); CI trains.
TRAIN_TIMEOUT_S = 900

def _given(variable: str) -> str:
    """The policy file environment ``variable`` names ('' when unset); it must exist."""
    given = os.environ.get(variable, "")
    assert not given or os.path.isfile(given), "%s=%s does not exist" % (variable, given)
    return given


@pytest.fixture
def policy_file(tmp_path) -> str:
    """A file that is no policy: enough for franka_launch.plan, which only checks it exists."""
    path = tmp_path / "policy.onnx"
    path.write_bytes(b"plan() only checks that the file exists")
    return str(path)


@pytest.fixture(scope="session")
def reach_policy(tmp_path_factory) -> str:
    """Path of a contract-2 FR3 policy file written by train_node (reach-rl-train)."""
    given = _given("REACH_RL_TEST_POLICY")
    if given:
        return given
    pytest.importorskip("torch", reason="training a test policy needs torch (make setup)")
    from ros_harness import NodeProcess  # skips the test where rclpy is absent

    out = str(tmp_path_factory.mktemp("policy") / "policy.onnx")
    node = NodeProcess("reach_rl_train.train_node", [("device", "cpu"), ("output", out),
                                                    ("linger", 0.0)])
    try:
        assert node.wait(TRAIN_TIMEOUT_S) == 0, node.output
    finally:
        node.stop()
    # The trainer's progress went through the node's ROS log, to the last iteration.
    from reach_rl_train.cli import default_config_path
    from reach_rl_train.config import load_config

    cfg = load_config(default_config_path())
    last = cfg.run.max_iterations
    assert cfg.run.until_goal  # the default run stops at its goal, or at max_iterations
    assert re.search(r"\[reach_rl_train\]: (goal reached at iteration \d+|goal .* not reached in %d "
                     r"iterations)" % last, node.output), node.output
    assert "latched on /reach_rl_train/policy" in node.output
    assert os.path.isfile(out)
    return out


@pytest.fixture(scope="session")
def libfranka_policy(tmp_path_factory) -> str:
    """Path of an FR3 policy trained for the libfranka interface as ``make demo`` trains it:
    ``reach-rl-train --interface libfranka``, the interface's own limits (4 rad/s^2).
    REACH_RL_TEST_LIBFRANKA_POLICY=/path/policy.onnx reuses one."""
    given = _given("REACH_RL_TEST_LIBFRANKA_POLICY")
    if given:
        return given
    pytest.importorskip("torch", reason="training a test policy needs torch (make setup)")
    import subprocess
    import sys

    out = str(tmp_path_factory.mktemp("libfranka_policy") / "policy.onnx")
    train = os.path.join(os.path.dirname(sys.executable), "reach-rl-train")
    done = subprocess.run([train, "--interface", "libfranka", "--device", "cpu", "--out", out],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=TRAIN_TIMEOUT_S)
    assert done.returncode == 0 and os.path.isfile(out), done.stdout[-3000:]
    return out
