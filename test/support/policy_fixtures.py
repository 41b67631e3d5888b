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
    # Pose policies: this 2-core CPU, 512 arms, two trainings side by side; 400 iterations, then
    # --resume <out>_logs/checkpoint.pt to 700 and to 850 (the last 150 with the pose brake margin,
    # 0.2 rad, which came in then; the command runs all 850 with it). Each file is its best
    # held-out iteration, within 1 cm and 5 deg (worse of both conditions): ros2_control 830,
    # 98.4 %, 1.46 mm, 0.49 deg, 1.52 s to both; libfranka 790, 99.0 %, 1.53 mm, 0.52 deg, 1.34 s
    "fr3_ros2_control_pose.onnx": Committed(
        "ros2_control", "pose", "reach-rl-train --target pose --device cpu run.threads=1 "
        "run.seed=1 --out fr3_ros2_control_pose.onnx, then --resume "
        "fr3_ros2_control_pose_logs/checkpoint.pt --max-iterations 700 and 850"),
    "fr3_libfranka_pose.onnx": Committed(
        "libfranka", "pose", "reach-rl-train --target pose --interface libfranka --device cpu "
        "run.threads=1 run.seed=1 --out fr3_libfranka_pose.onnx, then --resume "
        "fr3_libfranka_pose_logs/checkpoint.pt --max-iterations 700 and 850"),
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
