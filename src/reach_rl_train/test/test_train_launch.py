"""train.launch.py, as installed by colcon, under launch_pytest: a two-iteration training on CPU
writes the policy file and latches its path on /reach_rl_train/policy.

Skips, saying why, without launch_pytest / launch_ros (a ROS 2 install: they are on no registry),
rclpy, torch, or when reach_rl_train is not in the ament index (run `colcon build` and source
env.sh). Where it skips, test_train_node.py judges the same: train_node started as a process with
the launch file's arguments as its text parameters (reach_rl_train/train_parameters.py) trains,
writes the policy and latches its path.
"""
import os
import random
import time

import pytest

os.environ.setdefault("REACH_RL_TEST_DOMAIN_ID", str(random.Random().randint(1, 100)))
os.environ["ROS_DOMAIN_ID"] = os.environ["REACH_RL_TEST_DOMAIN_ID"]
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

NEEDS_LAUNCH = ("needs launch_pytest and launch_ros from a ROS 2 install (not on PyPI); "
                "test_train_node.py starts train_node with the same parameters")
launch_pytest = pytest.importorskip("launch_pytest", reason=NEEDS_LAUNCH)
pytest.importorskip("launch_ros", reason=NEEDS_LAUNCH)
ament_index = pytest.importorskip(
    "ament_index_python.packages", reason="ament_index_python is not installed (ROS 2 wheels absent)")
pytest.importorskip("torch", reason="torch is not installed: the trainer needs it")
try:
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from reach_rl_deploy.ros_plumbing.background_spin import BackgroundSpin
except Exception as exc:  # ImportError, or OSError for missing ROS shared libraries
    pytest.skip("rclpy / ROS 2 messages unavailable (%s: %s)" % (type(exc).__name__, exc),
                allow_module_level=True)

from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def installed_launch_file():
    try:
        share = ament_index.get_package_share_directory("reach_rl_train")
    except ament_index.PackageNotFoundError:
        pytest.skip("reach_rl_train is not in the ament index: `colcon build --symlink-install`, "
                    "then source env.sh")
    path = os.path.join(share, "launch", "train.launch.py")
    if not os.path.isfile(path):
        pytest.skip("%s is not installed: run `colcon build` again" % path)
    return path


@pytest.fixture(scope="module")
def policy_out(tmp_path_factory):
    return str(tmp_path_factory.mktemp("train_launch") / "policy.onnx")


@launch_pytest.fixture(scope="module")
def train_launch(policy_out):
    """What `ros2 launch reach_rl_train train.launch.py device:=cpu max_iterations:=2 ...` runs."""
    arguments = {"device": "cpu", "max_iterations": "2", "num_envs": "32", "output": policy_out}
    return LaunchDescription([
        SetEnvironmentVariable("OMP_NUM_THREADS", "1"),  # one torch thread on a shared machine
        IncludeLaunchDescription(PythonLaunchDescriptionSource(installed_launch_file()),
                                 launch_arguments=arguments.items()),
        launch_pytest.actions.ReadyToTest(),
    ])


def wait_for_latched_policy(timeout):
    """The first string on /reach_rl_train/policy (transient local), or None after ``timeout`` s."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("test_train_launch", context=context)
    received = []
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(String, "/reach_rl_train/policy", lambda msg: received.append(msg.data), qos)
    spinner = BackgroundSpin(node)
    try:
        deadline = time.monotonic() + timeout
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        spinner.close()
        rclpy.try_shutdown(context=context)
    return received[0] if received else None


@pytest.mark.launch(fixture=train_launch)
def test_launch_trains_and_writes_the_policy(policy_out):
    policy = wait_for_latched_policy(120.0)
    assert policy == policy_out, "no policy path latched on /reach_rl_train/policy within 120 s"
    assert os.path.isfile(policy_out)
    assert os.path.isfile(os.path.join(os.path.splitext(policy_out)[0] + "_logs", "checkpoint.pt"))
