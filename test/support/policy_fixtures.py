"""The policies the deploy tests deploy (pytest fixtures).

FR3 policies are committed beside reach_rl_deploy's tests: two tiny point policies, one per
interface, trained by ``reach-rl-train "ppo.hidden=[64,64]" [--interface libfranka]`` (1000
held-out targets: 99.9 % within 1 cm, median 1.5 mm; libfranka: 100 %, 1.2 mm), and a pose
policy per interface (``COMMITTED`` has each one's command). reach_rl_train's
test_committed_policies.py fails when they no longer match the policy file contract that export
writes today; re-export them from their checkpoints (``reach-rl-export
<run>_logs/checkpoint.pt --out <file>``, as for contract 3) or retrain them with the commands in
``COMMITTED``. REACH_RL_TEST_POLICY / REACH_RL_TEST_LIBFRANKA_POLICY /
REACH_RL_TEST_POSE_POLICY / REACH_RL_TEST_LIBFRANKA_POSE_POLICY=/path/policy.onnx deploy
another file instead (e.g. the default training's, runs/demo/...).
"""
import os
from typing import NamedTuple

import pytest

from source_tree import REPO

POLICIES = REPO / "src" / "reach_rl_deploy" / "test" / "policies"


class Committed(NamedTuple):
    interface: str  # the deploy interface it was trained for
    target: str  # point | pose
    command: str  # the command that wrote it


COMMITTED = {
    "fr3_ros2_control.onnx": Committed("ros2_control", "point", 'reach-rl-train "ppo.hidden=[64,64]" '
                                       "--device cpu --out fr3_ros2_control.onnx"),
    "fr3_libfranka.onnx": Committed("libfranka", "point", 'reach-rl-train "ppo.hidden=[64,64]" '
                                    "--interface libfranka --device cpu --out fr3_libfranka.onnx"),
    # Pose policies (device tool, 16,384 arms; 1000 held-out targets, 4 in a row, nominal):
    # libfranka on one H100, the bench's last iteration when SIGINT cut it at 88 s wall (about
    # 23 s of training), 99.3 %, held from 1.28 s; ros2_control on one H200, SIGINT at 170 s,
    # its best judgement (ranked by the time from which 1 cm and 5 deg hold), iteration 1040 of
    # 1508, 99.9 %, held from 1.42 s.
    "fr3_ros2_control_pose.onnx": Committed(
        "ros2_control", "pose", "reach-rl-train --device cuda --num-envs 16384 --target pose "
        "ppo.desired_kl=0.01 ppo.num_steps=8 ppo.num_epochs=5 run.seed=1 --max-iterations 3000 "
        "--until-goal --out fr3_ros2_control_pose.onnx"),
    "fr3_libfranka_pose.onnx": Committed(
        "libfranka", "pose", "python3 bench/train_bench.py --device cuda --num-envs 16384 "
        "--time-limit 24 --eval-every 10 --eval-in-a-row 4 --skip-sim --skip-rsl-rl --override "
        "ppo.desired_kl=0.01 --override task.interface=libfranka --override ppo.num_steps=8 "
        "--override ppo.num_epochs=5 --override task.target=pose --override run.seed=1 "
        "(its policy.onnx)"),
}


def _policy(variable: str, committed: str) -> str:
    """The file environment ``variable`` names, else the committed one."""
    given = os.environ.get(variable, "")
    assert not given or os.path.isfile(given), "%s=%s does not exist" % (variable, given)
    return given or str(POLICIES / committed)


@pytest.fixture
def policy_file(tmp_path) -> str:
    """A file that is no policy: enough for franka_plan.plan, which only checks it exists."""
    path = tmp_path / "policy.onnx"
    path.write_bytes(b"plan() only checks that the file exists")
    return str(path)


@pytest.fixture(scope="session")
def reach_policy() -> str:
    """Path of an FR3 policy file for the ros2_control interface (the topic path)."""
    return _policy("REACH_RL_TEST_POLICY", "fr3_ros2_control.onnx")


@pytest.fixture(scope="session")
def libfranka_policy() -> str:
    """Path of an FR3 policy file for the libfranka interface (its own limits, 4 rad/s^2)."""
    return _policy("REACH_RL_TEST_LIBFRANKA_POLICY", "fr3_libfranka.onnx")


@pytest.fixture(scope="session")
def reach_pose_policy() -> str:
    """Path of an FR3 pose policy file (task.target=pose) for the ros2_control interface."""
    return _policy("REACH_RL_TEST_POSE_POLICY", "fr3_ros2_control_pose.onnx")


@pytest.fixture(scope="session")
def libfranka_pose_policy() -> str:
    """Path of an FR3 pose policy file (task.target=pose) for the libfranka interface."""
    return _policy("REACH_RL_TEST_LIBFRANKA_POSE_POLICY", "fr3_libfranka_pose.onnx")
