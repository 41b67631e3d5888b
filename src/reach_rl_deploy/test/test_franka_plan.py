"""franka.launch.py's plan for each argument set, the controller config, and the bring-up include
without starting it (the simulated robots, started for real: reach_rl_sim's test_sim_launch.py).

The launch actions need launch_ros, which only a ROS 2 install has: those tests skip here, and
the processes they wrap are judged through :func:`franka_plan.node_processes` (test_plan_runner.py).
"""
import os

import pytest
import yaml

from reach_rl_deploy.launch_plan import franka_plan
from reach_rl_deploy.launch_plan.franka_plan import plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # reach_rl_deploy's folder
NEEDS_LAUNCH_ROS = ("needs launch_ros from a ROS 2 install (not on PyPI); the processes it "
                    "starts are checked through node_processes (test_plan_runner.py)")


def test_real_arm_uses_franka_ros2_without_autostart(policy_file):
    p = plan({"policy": policy_file, "robot_ip": "172.16.0.2", "arm_id": "fr3"})
    assert p.mode == "hardware"
    assert p.deploy_params["autostart"] is False
    assert p.deploy_params["robot"] == "fr3"
    assert p.deploy_params["joint_states_topic"] == "franka/joint_states"
    assert p.franka_args == {"robot_type": "fr3", "arm_id": "fr3", "robot_ip": "172.16.0.2",
                             "use_fake_hardware": "false", "fake_sensor_commands": "false",
                             "load_gripper": "false"}
    assert p.controller_file == "fr3_joint_trajectory_controller.yaml"
    # The controller is spawned inactive; the node's ~/enable activates it.
    assert p.deploy_params["activate_controller"] == "joint_trajectory_controller"
    assert p.deploy_params["trajectory_topic"] == "joint_trajectory_controller/joint_trajectory"


def test_fake_hardware_and_explicit_autostart(policy_file):
    p = plan({"policy": policy_file, "use_fake_hardware": "true", "autostart": "true"})
    assert p.mode == "hardware" and p.deploy_params["autostart"] is True
    assert p.franka_args["use_fake_hardware"] == "true"
    assert p.franka_args["robot_ip"] == franka_plan.FAKE_HARDWARE_IP


def test_libfranka_sim_runs_franka_sim_and_points_the_node_at_it(policy_file):
    p = plan({"policy": policy_file, "interface": "libfranka"})
    assert p.mode == "libfranka_sim" and p.deploy_params["autostart"] is True
    assert p.deploy_params["interface"] == "libfranka"
    assert p.deploy_params["robot_ip"] == "127.0.0.1"
    assert p.franka_args == {} and p.sim_params == {}


def test_libfranka_on_a_real_arm_needs_no_franka_ros2_and_waits_for_enable(policy_file):
    p = plan({"policy": policy_file, "interface": "libfranka", "robot_ip": "172.16.0.2"})
    assert p.mode == "libfranka" and p.deploy_params["autostart"] is False
    assert p.deploy_params["robot_ip"] == "172.16.0.2" and p.franka_args == {}


@pytest.mark.parametrize("args, message", [
    ({"interface": "fci"}, "interface:='fci'"),
    ({"interface": "libfranka", "use_fake_hardware": "true"}, "use_fake_hardware is franka_ros2"),
    ({}, "policy:= is required"),
    ({"policy": "/nonexistent/p.onnx"}, "does not exist"),
    ({"arm_id": "ur5"}, "arm_id"),
    ({"arm_id": "panda"}, "franka_description has no panda"),  # and libfranka >= 0.18: FR3 only
    ({"sim": "false"}, "needs robot_ip"),
    ({"sim": "true", "robot_ip": "172.16.0.2"}, "leave out robot_ip"),
    ({"autostart": "maybe"}, "must be true or false"),
    ({"robotip": "172.16.0.2"}, "unknown argument"),
])
def test_bad_arguments_say_what_to_fix(args, message, policy_file):
    if "policy" not in args and message != "policy:= is required":
        args = dict(args, policy=policy_file)
    with pytest.raises(ValueError, match=message):
        plan(args)


@pytest.mark.parametrize("arm_id", ["fr3"])
def test_controller_config_files_name_the_arm_joints(arm_id):
    with open(os.path.join(ROOT, "config", "%s_joint_trajectory_controller.yaml" % arm_id)) as f:
        parameters = yaml.safe_load(f)
    assert parameters == franka_plan.controller_parameters(arm_id)
    jtc = parameters["joint_trajectory_controller"]["ros__parameters"]
    assert jtc["joints"] == ["%s_joint%d" % (arm_id, i) for i in range(1, 8)]
    # Velocity command interface, open loop: the trajectory's velocity, no P on the measured
    # position (JTC's defaults, gains 0 and ff 0, would command nothing).
    assert jtc["command_interfaces"] == ["velocity"]
    assert all(jtc["gains"][joint] == {"p": 0.0, "i": 0.0, "d": 0.0, "ff_velocity_scale": 1.0}
               for joint in jtc["joints"])
    # Each message continues from the last commanded state and must end at rest.
    assert jtc["interpolate_from_desired_state"] is True
    assert jtc["allow_nonzero_velocity_at_trajectory_end"] is False


# The arguments of franka_bringup/launch/franka.launch.py in the two families of franka_ros2
# (from issue 23's read of its tags): the name under which each takes the arm, and whether
# robot_ip has a default (launch refuses an include that leaves out an argument without one).
FRANKA_BRINGUP_FAMILIES = {
    ">= 3.2 (Jazzy), >= 2.2 (Humble)": (
        "robot_type", ("robot_type", "arm_prefix", "namespace", "robot_ip", "load_gripper",
                       "use_fake_hardware", "fake_sensor_commands", "joint_state_rate",
                       "load_franka_robot_state_broadcaster", "controllers_yaml")),
    "1.0 - 3.1": (
        "arm_id", ("arm_id", "robot_ip", "load_gripper", "use_fake_hardware",
                   "fake_sensor_commands", "use_rviz")),
}


@pytest.fixture(params=sorted(FRANKA_BRINGUP_FAMILIES))
def fake_franka_bringup(request, tmp_path, monkeypatch):
    """An ament prefix with a franka_bringup whose franka.launch.py declares one family's
    arguments, the arm's and robot_ip without a default: enough to resolve, load and execute
    what franka.launch.py includes, without franka_ros2. Yields (file, arm argument name)."""
    arm_argument, arguments = FRANKA_BRINGUP_FAMILIES[request.param]
    prefix = tmp_path / "prefix"
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "franka_bringup").touch()
    launch_dir = prefix / "share" / "franka_bringup" / "launch"
    launch_dir.mkdir(parents=True)
    required = (arm_argument, "robot_ip")
    (launch_dir / "franka.launch.py").write_text(
        "from launch import LaunchDescription\n"
        "from launch.actions import DeclareLaunchArgument\n"
        "def generate_launch_description():\n"
        "    return LaunchDescription(\n"
        "        [DeclareLaunchArgument(n) for n in %r]\n"
        "        + [DeclareLaunchArgument(n, default_value='') for n in %r])\n"
        % (required, tuple(a for a in arguments if a not in required)))
    monkeypatch.setenv("AMENT_PREFIX_PATH", "%s:%s" % (prefix, os.environ.get("AMENT_PREFIX_PATH", "")))
    return launch_dir / "franka.launch.py", arm_argument


def _text(value, context):
    """A launch argument name or value as text (plain strings or lists of substitutions)."""
    if isinstance(value, str):
        return value
    return "".join(_text(part, context) if isinstance(part, str) else part.perform(context)
                   for part in value)


def test_hardware_description_includes_franka_bringup_and_spawns_the_controller(
        policy_file, fake_franka_bringup):
    pytest.importorskip("launch_ros", reason=NEEDS_LAUNCH_ROS)
    from launch import LaunchContext
    from launch.actions import IncludeLaunchDescription
    from launch_ros.actions import Node

    bringup_file, arm_argument = fake_franka_bringup
    for args in ({"robot_ip": "172.16.0.2"}, {"use_fake_hardware": "true"}):
        p = plan(dict(args, policy=policy_file))
        include, spawner, deploy = franka_plan.launch_actions(p, "/share/reach_rl_deploy")
        assert isinstance(include, IncludeLaunchDescription)
        context = LaunchContext()
        include.execute(context)  # raises on a declared argument without default left out
        assert include.launch_description_source.location == str(bringup_file)
        passed = {_text(k, context): _text(v, context) for k, v in include.launch_arguments}
        assert passed == p.franka_args
        assert passed[arm_argument] == "fr3"
    assert isinstance(spawner, Node) and isinstance(deploy, Node)
    spawner_args = [a[0].perform(context) for a in spawner.cmd[1:] if a]
    assert spawner_args[0] == "joint_trajectory_controller"
    assert "--inactive" in spawner_args  # ~/enable activates it
    # Jazzy's spawner rejects --controller-type (removed in ros2_control 4.15): the type is the
    # param file's, which test_controller_config_files_name_the_arm_joints checks.
    assert "--controller-type" not in spawner_args
    param_file = spawner_args[spawner_args.index("--param-file") + 1]
    assert param_file == "/share/reach_rl_deploy/config/fr3_joint_trajectory_controller.yaml"


def test_sim_descriptions_start_the_node_processes(policy_file):
    """Each launch_ros Node is one of node_processes, with its name, parameters and environment
    (what reach-rl-launch starts)."""
    pytest.importorskip("launch_ros", reason=NEEDS_LAUNCH_ROS)
    from launch_ros.actions import Node

    for args in ({"interface": "libfranka"}, {}):
        p = plan(dict(args, policy=policy_file))
        nodes = franka_plan.launch_actions(p, "/share/reach_rl_deploy")
        processes = franka_plan.node_processes(p, "/share/reach_rl_deploy")
        assert len(nodes) == len(processes)
        for node, process in zip(nodes, processes):
            assert isinstance(node, Node)
            assert node.node_executable == process.executable
            assert node.node_package == process.package
            env = {"".join(t.text for t in key): "".join(t.text for t in value)
                   for key, value in node.additional_env}
            assert env == process.env
    p = plan({"policy": policy_file, "interface": "libfranka", "robot_ip": "172.16.0.2"})
    assert len(franka_plan.launch_actions(p, "/share/reach_rl_deploy")) == 1
