"""What ``ros2 launch reach_rl_deploy franka.launch.py`` starts, decided from its arguments.

:func:`plan` is pure (strings in, a :class:`LaunchPlan` out, ValueError with what to fix);
:func:`node_processes` lists the ROS processes a plan starts, with their parameters, as data.
Two things start them: :func:`launch_actions` turns them into launch actions for the launch file
(which only declares the arguments and calls these), and ``reach-rl-launch``
(:mod:`reach_rl_deploy.launch_plan.plan_runner`) starts them as plain processes where ROS 2's launch system
is not installed. Both read the same list, so the two cannot start different things.

Modes, by ``interface`` and ``sim``:

* ``interface:=libfranka``: ``deploy_node`` runs Franka's 1 kHz loop itself through libfranka,
  at ``robot_ip``; no franka_ros2. With ``sim:=true`` (the default without ``robot_ip``)
  franka-sim, the independent FCI emulator (``franka_sim``: MuJoCo FR3, motion limits and
  communication constraints enforced), runs on this machine and the node connects to
  127.0.0.1.
* ``interface:=ros2_control`` (default), ``sim`` (the default when neither ``robot_ip`` nor
  ``use_fake_hardware`` is given): franka-sim, ``franka_standin_node`` (franka_ros2's
  joint_trajectory_controller data path on it through libfranka: ``/franka/joint_states``
  every cycle, each trajectory interpolated at 1 kHz) and ``deploy_node`` reading
  ``/franka/joint_states`` as on hardware; no franka_ros2 needed.
* ``interface:=ros2_control``, ``hardware`` (a real arm at ``robot_ip``, or franka_ros2's fake
  hardware): franka_ros2's bring-up (``franka_bringup/launch/franka.launch.py``, franka_ros2
  for Jazzy, 3.x), a ``joint_trajectory_controller/JointTrajectoryController`` named
  ``joint_trajectory_controller`` on the seven arms joints' velocity interfaces, spawned
  ``--inactive`` through the controller manager with this package's
  ``config/<arm_id>_joint_trajectory_controller.yaml`` (``~/enable`` activates it), and
  ``deploy_node`` reading ``/franka/joint_states``: franka_ros2's joint_state_broadcaster
  publishes there at the 1 kHz controller rate, while ``/joint_states`` is
  joint_state_publisher's 30 Hz merge, too slow for the deploy node's staleness watchdog.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Tuple

from reach_rl_core.franka_model import joint_names
from reach_rl_core.filter_limits import INTERFACES, LIBFRANKA
from reach_rl_deploy.deploy_parameters import DeployParameters, check_deploy_robot, described

_DEPLOY = DeployParameters.__dataclass_fields__  # the deploy node's parameter declarations
CONTROLLER_NAME = "joint_trajectory_controller"
CONTROLLER_TYPE = "joint_trajectory_controller/JointTrajectoryController"
TRAJECTORY_TOPIC = _DEPLOY["trajectory_topic"].default  # CONTROLLER_NAME's, relative
# franka_hardware's velocity command interface, with JTC's velocity-only control law: the next
# sample's velocity as feed-forward, and no P on the measured position (p 0, ff 1: open loop, as
# franky's Ruckig on the libfranka path). The policy closes the loop at 50 Hz on the measured
# joint states; a P term would turn every step of the measured position into a command step
# (on franka-sim under load, its physics catching up 17 ms at once: P = 1 /s stepped 4.8 mrad/s,
# 6332 rad/s^3 of jerk; docs/measurements.md). Velocity, not position: a position interface
# would get the trajectory's positions unfiltered (franka_hardware's rate limiter is off).
TRAJECTORY_GAINS = {"p": 0.0, "i": 0.0, "d": 0.0, "ff_velocity_scale": 1.0}
HARDWARE_JOINT_STATES = "franka/joint_states"  # relative: namespaces apply
SIM_JOINT_STATES = _DEPLOY["joint_states_topic"].default  # where libfranka's node publishes them
FAKE_HARDWARE_IP = "dont-care"  # franka_ros2's README's robot_ip with use_fake_hardware:=true
# franka.launch.py's arguments: name -> (default, description); those that set a deploy
# parameter of the same meaning take its declaration's (deploy_parameters.py).
ARGUMENTS = {
    "interface": (_DEPLOY["interface"].default, described("interface")),
    "robot_ip": (_DEPLOY["robot_ip"].default, "hostname or IP of the arm's control unit; empty: "
                                              "no real arm"),
    "arm_id": (_DEPLOY["robot"].default, described("robot")),
    "use_fake_hardware": ("false", "franka_ros2's fake hardware: a bring-up check, may not move"),
    "sim": ("", "true: the simulated Franka (default without robot_ip and fake hardware)"),
    "policy": (_DEPLOY["policy"].default, described("policy")),
    "target_topic": (_DEPLOY["target_topic"].default, described("target_topic")),
    "autostart": ("", "enable motion at start; default true with sim, else call ~/enable"),
    "load_gripper": ("false", "franka_ros2: load the Franka Hand"),
}


@dataclass(frozen=True)
class LaunchPlan:
    """The processes to start and their parameters."""

    mode: str  # "sim", "hardware", "libfranka" or "libfranka_sim"
    arm_id: str
    deploy_params: Dict[str, object]
    sim_params: Dict[str, object] = field(default_factory=dict)
    franka_args: Dict[str, str] = field(default_factory=dict)  # franka_bringup's franka.launch.py
    controller_file: str = ""  # config file name in this package's share/config


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError("%s:=%r must be true or false" % (name, text))


def plan(args: Mapping[str, str]) -> LaunchPlan:
    """The launch plan for franka.launch.py's argument values (missing ones take defaults)."""
    unknown = sorted(set(args) - set(ARGUMENTS))
    if unknown:
        raise ValueError("unknown argument(s) %s; franka.launch.py takes %s"
                         % (", ".join(unknown), ", ".join(ARGUMENTS)))
    value = {name: args.get(name, default) for name, (default, _) in ARGUMENTS.items()}
    arm_id = value["arm_id"]
    check_deploy_robot(arm_id, "arm_id:=")
    policy = value["policy"]
    if not policy:
        raise ValueError("policy:= is required: the .onnx file written by reach-rl-train "
                         "(e.g. policy:=$PWD/runs/demo/policy.onnx)")
    policy = os.path.abspath(os.path.expanduser(policy))
    if not os.path.isfile(policy):
        raise ValueError("policy:=%s does not exist: train one with reach-rl-train" % policy)
    robot_ip = value["robot_ip"].strip()
    fake = _flag("use_fake_hardware", value["use_fake_hardware"])
    sim = (not robot_ip and not fake) if value["sim"] == "" else _flag("sim", value["sim"])
    if not sim and not robot_ip and not fake:
        raise ValueError("sim:=false needs robot_ip:=<address of the arm> or "
                         "use_fake_hardware:=true")
    if sim and (robot_ip or fake):
        raise ValueError("sim:=true starts the simulated Franka: leave out robot_ip and "
                         "use_fake_hardware, or set sim:=false")
    autostart = sim if value["autostart"] == "" else _flag("autostart", value["autostart"])
    interface = value["interface"]
    if interface not in INTERFACES:
        raise ValueError("interface:=%r: expected one of %s" % (interface, ", ".join(INTERFACES)))
    if interface == LIBFRANKA:
        if fake:
            raise ValueError("use_fake_hardware is franka_ros2's: with interface:=libfranka use "
                             "sim:=true (franka-sim) or robot_ip:=<address>")
        params = {"policy": policy, "robot": arm_id, "target_topic": value["target_topic"],
                  "autostart": autostart, "interface": LIBFRANKA,
                  "robot_ip": "127.0.0.1" if sim else robot_ip,
                  "joint_states_topic": SIM_JOINT_STATES}
        return LaunchPlan(mode=LIBFRANKA + "_sim" if sim else LIBFRANKA, arm_id=arm_id,
                          deploy_params=params)
    deploy_params = {"policy": policy, "robot": arm_id, "target_topic": value["target_topic"],
                     "autostart": autostart, "trajectory_topic": TRAJECTORY_TOPIC,
                     "joint_states_topic": HARDWARE_JOINT_STATES}
    if sim:
        return LaunchPlan(mode="sim", arm_id=arm_id, deploy_params=deploy_params,
                          sim_params={"arm_id": arm_id, "robot_ip": "127.0.0.1"})
    # Both families' names for the arm: franka_ros2 >= 3.2 (Jazzy) and >= 2.2 (Humble) read
    # robot_type, older releases arm_id; an included launch file ignores arguments it does not
    # declare. robot_ip has no default in some releases: fake hardware gets Franka's placeholder.
    franka_args = {"robot_type": arm_id, "arm_id": arm_id,
                   "robot_ip": robot_ip or FAKE_HARDWARE_IP,
                   "use_fake_hardware": str(fake).lower(),
                   "fake_sensor_commands": str(fake).lower(),
                   "load_gripper": str(_flag("load_gripper", value["load_gripper"])).lower()}
    return LaunchPlan(mode="hardware", arm_id=arm_id,
                      deploy_params=dict(deploy_params, activate_controller=CONTROLLER_NAME),
                      franka_args=franka_args,
                      controller_file="%s_joint_trajectory_controller.yaml" % arm_id)


def controller_parameters(arm_id: str) -> Dict[str, Dict]:
    """What ``config/<arm_id>_joint_trajectory_controller.yaml`` holds (a test checks the file):
    JTC on the velocity interfaces (TRAJECTORY_GAINS), quintic splines, each new trajectory
    continuing from the last commanded state (``interpolate_from_desired_state``, ros2_controllers
    Jazzy), trajectories ending at rest, no timeout and no goal tolerances to abort on."""
    joints = list(joint_names(arm_id))
    return {CONTROLLER_NAME: {"ros__parameters": {
        "type": CONTROLLER_TYPE,
        "joints": joints,
        "command_interfaces": ["velocity"],
        "state_interfaces": ["position", "velocity"],
        "interpolation_method": "splines",
        "interpolate_from_desired_state": True,
        "allow_nonzero_velocity_at_trajectory_end": False,
        "cmd_timeout": 0.0,
        "constraints": {"goal_time": 0.0},
        "gains": {joint: dict(TRAJECTORY_GAINS) for joint in joints},
    }}}


# Environment variable that keeps franka-sim up a few seconds after SIGINT, then stops it
# (reach_rl_sim/scripts/franka_sim).
OUTLIVE_SIGINT = "REACH_RL_FRANKA_SIM_OUTLIVE_SIGINT"
DEPLOY_CONFIG = "deploy.yaml"  # in reach_rl_deploy's share/config


@dataclass(frozen=True)
class NodeProcess:
    """One ROS executable a plan starts, as launch_ros' ``Node`` starts it: ``<prefix of
    package>/lib/<package>/<executable> --ros-args -r __node:=<name> --params-file ...``."""

    package: str
    executable: str
    name: str
    param_files: Tuple[str, ...] = ()  # absolute paths, loaded first
    parameters: Dict[str, object] = field(default_factory=dict)  # then these, overriding them
    env: Dict[str, str] = field(default_factory=dict)  # added to the environment


def node_processes(launch_plan: LaunchPlan, share: str) -> List[NodeProcess]:
    """The ROS processes ``launch_plan`` starts, in start order; ``share`` is reach_rl_deploy's
    share directory. The hardware mode's franka_ros2 bring-up and controller spawner are not among
    them (:func:`launch_actions` adds those): they exist only on a ROS 2 install."""
    deploy = NodeProcess("reach_rl_deploy", "deploy_node", "reach_rl_deploy",
                         param_files=(os.path.join(share, "config", DEPLOY_CONFIG),),
                         parameters=dict(launch_plan.deploy_params))
    if launch_plan.mode in (LIBFRANKA, "hardware"):
        return [deploy]
    # franka-sim has no ROS interface: a plain process, stopped with the others. It stays up 3 s
    # after a SIGINT, so that the nodes end their motions against it as against a robot, then
    # stops by itself, inside launch's 5 s before SIGTERM.
    franka_sim = NodeProcess("reach_rl_sim", "franka_sim", "franka_sim",
                             env={OUTLIVE_SIGINT: "1"})
    if launch_plan.mode == LIBFRANKA + "_sim":
        return [franka_sim, deploy]
    standin = NodeProcess("reach_rl_sim", "franka_standin_node", "franka_standin",
                          parameters=dict(launch_plan.sim_params))
    return [franka_sim, standin, deploy]


def launch_actions(launch_plan: LaunchPlan, share: str) -> List:
    """Launch actions for ``launch_plan``; ``share`` is reach_rl_deploy's share directory."""
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    def node(p: NodeProcess):
        parameters = list(p.param_files) + ([p.parameters] if p.parameters else [])
        return Node(package=p.package, executable=p.executable, name=p.name, output="screen",
                    parameters=parameters or None, additional_env=p.env or None)

    nodes = [node(p) for p in node_processes(launch_plan, share)]
    if launch_plan.mode != "hardware":
        return nodes
    bringup = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare("franka_bringup"), "launch", "franka.launch.py"])),
        launch_arguments=launch_plan.franka_args.items())
    # The type comes from the param file's ``type:``: Jazzy's spawner (ros2_control >= 4.15) has
    # no --controller-type, and Humble's reads the file's type as well.
    spawner = Node(package="controller_manager", executable="spawner", output="screen",
                   arguments=[CONTROLLER_NAME, "--param-file",
                              os.path.join(share, "config", launch_plan.controller_file),
                              "--inactive", "--controller-manager-timeout", "30"])
    return [bringup, spawner] + nodes
