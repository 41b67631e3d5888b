"""The tiny policy files committed for the deploy tests (reach_rl_deploy/test/policies) still
match the contract that export writes today: the same metadata keys and deploy-relevant values
(contract version, robot, rate, joint names, target box, command limits) as a file exported now
for their interface, the same input and output names, and the deploy side accepts them.

When this fails after a change of the contract or the training defaults, retrain them with the
commands in test/support/policy_fixtures.py (COMMITTED)."""
import json

import pytest

onnx = pytest.importorskip("onnx")

from policy_fixtures import COMMITTED, POLICIES  # noqa: E402
from reach_rl_core import policy_file as contract  # noqa: E402
from reach_rl_core.filter_limits import FilterLimits  # noqa: E402
from reach_rl_core.franka_model import joint_limits, joint_names  # noqa: E402
from reach_rl_deploy.policy_runtime import Policy  # noqa: E402
from reach_rl_train.config import TrainConfig  # noqa: E402
from reach_rl_train.export import policy_metadata  # noqa: E402

# Keys whose values differ between two trainings by design: who wrote the file, and the whole
# training configuration (network sizes, seeds) it came from.
PER_TRAINING = (contract.KEY_VERSION, contract.KEY_TRAIN_CONFIG)


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_committed_policy_matches_todays_contract(name):
    interface, target = COMMITTED[name].interface, COMMITTED[name].target
    model = onnx.load(str(POLICIES / name))
    written = {p.key: p.value for p in model.metadata_props}
    cfg = TrainConfig()
    cfg.task.interface, cfg.task.target = interface, target
    today = policy_metadata(cfg)
    assert sorted(written) == sorted(today), "metadata keys differ from today's export"
    for key in sorted(set(today) - set(PER_TRAINING)):
        assert written[key] == today[key], "%s: file %s, export today %s" % (key, written[key],
                                                                           today[key])
    assert json.loads(written[contract.KEY_TRAIN_CONFIG])["task"]["interface"] == interface
    inputs = contract.POINT_INPUTS if target == contract.POINT else tuple(contract.INPUT_SHAPES)
    assert [i.name for i in model.graph.input] == list(inputs)
    assert [o.name for o in model.graph.output] == [contract.OUTPUT_NAME]


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_deploy_accepts_the_committed_policy_for_its_interface(name):
    interface = COMMITTED[name].interface
    policy = Policy(str(POLICIES / name))
    assert policy.pose == (COMMITTED[name].target == contract.POSE)
    policy.check_matches("fr3", joint_names("fr3"))
    limits = FilterLimits.for_interface(joint_limits("fr3"), interface,
                                       1.0 / policy.info.policy_dt)
    contract.check_command_limits(policy.info, limits)
