"""Fixtures shared by the test modules."""
import os

import pytest

# A policy good enough to reach targets within 1 cm, trained once per test session on the CPU.
# REACH_RL_TEST_POLICY=/path/to/policy.onnx reuses a file trained earlier (while iterating on
# deploy tests); CI always trains.
TEST_POLICY_ARGS = ["--device", "cpu", "--num-envs", "256", "--max-iterations", "150"]


@pytest.fixture(scope="session")
def reach_policy(tmp_path_factory) -> str:
    """Path of a contract-v1 FR3 policy file written by reach-rl-train."""
    given = os.environ.get("REACH_RL_TEST_POLICY")
    if given:
        assert os.path.isfile(given), "REACH_RL_TEST_POLICY=%s does not exist" % given
        return given
    pytest.importorskip("torch", reason="training a test policy needs torch (make setup)")
    from reach_rl_train.cli import train_main

    out = str(tmp_path_factory.mktemp("policy") / "policy.onnx")
    assert train_main(TEST_POLICY_ARGS + ["--out", out, "run.threads=1"]) == 0
    return out
