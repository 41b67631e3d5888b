"""DeployController without ROS: joint-state reordering, watchdogs, policy rate, and that every
command it emits passes Franka's limits as a 1 kHz controller reads them, on real policy files."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="exporting a test policy needs torch (make setup)")

from reach_rl_deploy import deploy_controller as dc  # noqa: E402
from reach_rl_deploy.deploy_controller import (DeployController, JointSample,  # noqa: E402
                                               reorder_joint_state, watchdog)
from reach_rl_core.franka_model import FR3, READY_POSE, joint_names  # noqa: E402
from reach_rl_sim.limit_monitor import StreamMonitor  # noqa: E402
from reach_rl_deploy.policy_runtime import Policy  # noqa: E402
from reach_rl_core.filter_limits import FilterLimits  # noqa: E402
from reach_rl_train.actor_critic import ActorCritic  # noqa: E402
from reach_rl_train.config import TrainConfig  # noqa: E402
from reach_rl_train.export import export_policy, policy_metadata  # noqa: E402

NAMES = joint_names("fr3")
READY = np.array(READY_POSE)
TARGET = np.array([0.5, 0.2, 0.3])
DT = 1e-3


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """An untrained (but real, exported) FR3 policy whose output is scaled up to move briskly."""
    torch.manual_seed(0)
    model = ActorCritic([32, 32], 0.5)
    with torch.no_grad():
        model.actor[-1].weight.mul_(300.0)
    path = str(tmp_path_factory.mktemp("policy") / "policy.onnx")
    export_policy(model, TrainConfig(), path)
    return Policy(path)


@pytest.fixture(scope="module")
def nan_policy(tmp_path_factory):
    """A contract-2 file whose output is NaN: joint_vel_cmd = joint_pos * NaN."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nan = helper.make_tensor("nan", TensorProto.FLOAT, [1], [float("nan")])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["joint_pos", "nan"], ["joint_vel_cmd"])], "nan_policy",
        [helper.make_tensor_value_info("joint_pos", TensorProto.FLOAT, ["batch", 7])],
        [helper.make_tensor_value_info("joint_vel_cmd", TensorProto.FLOAT, ["batch", 7])], [nan])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in policy_metadata(TrainConfig()).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = str(tmp_path_factory.mktemp("nan") / "nan.onnx")
    onnx.save(model, path)
    return Policy(path)


def controller(policy):
    return DeployController(policy, FilterLimits.from_joint_limits(FR3), state_timeout=0.02)


def run(ctrl, ticks, sample_at, enabled=True, target=TARGET, start=0.0):
    """``ticks`` ticks at 1 kHz; ``sample_at(t)`` gives the joint sample at time t. Returns the
    commands [ticks, 7] and the statuses."""
    commands, statuses = [], []
    for k in range(ticks):
        t = start + k * DT
        commands.append(ctrl.tick(sample_at(t), target, enabled, t).copy())
        statuses.append(ctrl.status)
    return np.array(commands), statuses


def fresh(q=READY):
    return lambda t: JointSample(np.array(q, float), np.zeros(7), received=t)


def assert_within_limits(commands, q=READY):
    monitor = StreamMonitor(FR3, NAMES)
    errors = [e for e in (monitor.check(q, c) for c in commands) if e]
    assert not errors, errors[:3]


def test_reorder_picks_arm_joints_by_name_and_ignores_fingers():
    names = ["fr3_finger_joint1"] + list(reversed(NAMES))
    position = [0.04] + list(range(7, 0, -1))
    q, dq = reorder_joint_state(names, position, [0.0] * 8, NAMES)
    np.testing.assert_array_equal(q, np.arange(1, 8))
    with pytest.raises(ValueError, match="lacks fr3_joint1"):
        reorder_joint_state(joint_names("panda"), [0.0] * 7, [0.0] * 7, NAMES)
    with pytest.raises(ValueError, match="7 names but 6 positions"):
        reorder_joint_state(NAMES, [0.0] * 6, [0.0] * 7, NAMES)


def test_watchdog_states():
    ok = JointSample(READY, np.zeros(7), received=10.0, stamp=1000.0)
    assert watchdog(None, 10.0, 0.02) == dc.NO_STATE
    assert watchdog(ok, 10.01, 0.02) == dc.OK
    assert watchdog(ok, 10.03, 0.02) == dc.STALE_STATE
    assert watchdog(ok, 10.0, 0.02, wall_now=1000.01) == dc.OK
    assert watchdog(ok, 10.0, 0.02, wall_now=1000.05) == dc.STALE_STATE  # queued, then delivered
    assert watchdog(ok, 10.0, 0.02, wall_now=999.9) == dc.STALE_STATE  # stamped in the future
    bad = JointSample(READY * np.nan, np.zeros(7), received=10.0)
    assert watchdog(bad, 10.0, 0.02) == dc.NONFINITE_STATE


def test_policy_runs_at_its_rate_and_commands_stay_within_limits(policy):
    ctrl = controller(policy)
    assert ctrl.policy_every == 20  # 50 Hz policy, 1 kHz stream
    inferences = 0
    commands = []
    for k in range(400):
        commands.append(ctrl.tick(fresh()(k * DT), TARGET, True, k * DT).copy())
        inferences += ctrl.last_inference_s > 0
        ctrl.last_inference_s = 0.0
    assert inferences == 20
    assert set([ctrl.status]) == {dc.OK}
    commands = np.array(commands)
    assert np.abs(commands[-1]).max() > 0.05, "the policy never moved the arm"
    assert_within_limits(commands)


@pytest.mark.parametrize("fault", ["disabled", "stale", "nan state", "no target"])
def test_any_doubt_ramps_smoothly_to_zero(policy, fault):
    ctrl = controller(policy)
    moving, _ = run(ctrl, 300, fresh())
    assert np.abs(moving[-1]).max() > 0.05
    t0 = 0.3
    if fault == "disabled":
        after, statuses = run(ctrl, 2000, fresh(), enabled=False, start=t0)
    elif fault == "stale":
        frozen = fresh()(t0 - DT)
        after, statuses = run(ctrl, 2000, lambda t: frozen, start=t0)
    elif fault == "nan state":
        after, statuses = run(ctrl, 2000, fresh(READY * np.nan), start=t0)
    else:
        after, statuses = run(ctrl, 2000, fresh(), target=None, start=t0)
    expected = {"disabled": dc.DISABLED, "stale": dc.STALE_STATE, "nan state": dc.NONFINITE_STATE,
                "no target": dc.NO_TARGET}[fault]
    assert statuses[-1] == expected
    assert ctrl.stopped(), "not at rest 2 s after %s" % fault
    assert_within_limits(np.concatenate([moving, after]))
    zero_at = int(np.argmax(~np.any(after, axis=1)))
    print("%s: zero after %d ms from %.2f rad/s" % (fault, zero_at, np.abs(moving[-1]).max()))


def test_non_finite_policy_output_stops(nan_policy):
    ctrl = controller(nan_policy)
    commands, statuses = run(ctrl, 100, fresh())
    assert statuses[0] == dc.NONFINITE_POLICY
    assert not np.any(commands)
