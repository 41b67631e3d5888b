"""Fixtures shared by the test modules."""
import os

import pytest

# A policy good enough to reach targets within 1 cm: the default CPU training (config/train.yaml,
# about 3 min here), once per test session. REACH_RL_TEST_POLICY=/path/to/policy.onnx reuses a
# file trained earlier (e.g. runs/demo/policy.onnx, while iterating on deploy tests); CI trains.
TEST_POLICY_ARGS = ["--device", "cpu"]


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
    assert train_main(TEST_POLICY_ARGS + ["--out", out]) == 0
    return out
