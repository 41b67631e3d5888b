"""The deploy node's parameters, in one place: name, type (from the default), default, meaning.

``config/deploy.yaml`` sets them for ``franka.launch.py``; a field's ``doc`` is the description
``ros2 param describe`` shows. Units: Hz, s, rad, rad/s.
"""
from dataclasses import dataclass, field

from reach_rl_core.franka_model import ROBOTS

# The arms both deploy interfaces can drive. The Panda is not one: franka_ros2's
# franka_description has no "panda" (its Panda is "fer"), and libfranka >= 0.18 (franky's 0.21)
# talks only to an FR3 on system 5.9 or newer. Training keeps Panda kinematics (task.robot).
DEPLOY_ROBOTS = ("fr3",)


def check_deploy_robot(robot: str, name: str = "robot") -> None:
    """ValueError saying why, unless ``robot`` is an arm the deploy side can drive."""
    if robot in DEPLOY_ROBOTS:
        return
    why = ("franka_description has no panda and libfranka >= 0.18 drives only an FR3 (system "
           ">= 5.9); a Panda needs franka_ros2's 'fer' and libfranka < 0.18, which this package "
           "does not support" if robot in ROBOTS else "expected one of %s" % ", ".join(DEPLOY_ROBOTS))
    raise ValueError("%s %r cannot be deployed: %s" % (name, robot, why))


def _p(default, doc: str):
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class DeployParameters:
    """deploy_node's parameters; -1.0 for a fraction or ``command_hold`` means the interface's
    default (:data:`reach_rl_core.filter_limits.INTERFACE_DEFAULTS`)."""

    policy: str = _p("", "policy file (.onnx) written by reach-rl-train")
    robot: str = _p("fr3", "robot model: fr3 (the only arm both interfaces drive)")
    interface: str = _p("ros2_control", "ros2_control: one trajectory per policy step for "
                                        "franka_ros2's joint_trajectory_controller; libfranka: "
                                        "drive the arm through franky-control, whose C++ thread "
                                        "runs Franka's 1 kHz loop (needs robot_ip)")
    robot_ip: str = _p("", "libfranka: the arm's control unit (127.0.0.1 for franka-sim)")
    realtime: bool = _p(False, "libfranka: require real-time scheduling (true on a robot PC with "
                               "a real-time kernel)")
    rt_priority: int = _p(-1, "SCHED_FIFO priority; ros2_control: of every thread of the node "
                              "(below the controller manager's 50); libfranka: of the 1 kHz "
                              "control thread alone. Needs root or CAP_SYS_NICE, else a "
                              "warning; 0: the ordinary scheduler; -1: the interface's "
                              "(ros2_control 40, libfranka 80)")
    command_hold: float = _p(-1.0, "how long the arm keeps the last command when no new one "
                                   "comes, before it brakes to rest on its own [s]; -1: the "
                                   "interface's (ros2_control 0.04, libfranka 0.1)")
    collision_torque_thresholds: tuple = _p(
        (20.0, 20.0, 18.0, 18.0, 16.0, 14.0, 12.0),
        "libfranka: joint torque thresholds of the contact and collision reflexes [Nm], set at "
        "connection (Franka's examples' values)")
    collision_force_thresholds: tuple = _p(
        (20.0, 20.0, 20.0, 25.0, 25.0, 25.0),
        "libfranka: end-effector force [N] (x, y, z) and torque [Nm] (roll, pitch, yaw) "
        "thresholds of the contact and collision reflexes, set at connection")
    joint_impedance: tuple = _p((3000.0, 3000.0, 3000.0, 2500.0, 2500.0, 2000.0, 2000.0),
                               "libfranka: stiffness of the robot's internal joint impedance "
                               "controller [Nm/rad], set at connection")
    joint_prefix: str = _p("", "joint name prefix, default <robot>_joint")
    trajectory_topic: str = _p("joint_trajectory_controller/joint_trajectory",
                               "ros2_control: trajectory_msgs/JointTrajectory, one per policy step")
    activate_controller: str = _p("", "ros2_control: the controller ~/enable activates through "
                                      "/controller_manager/switch_controller (spawned inactive); "
                                      "empty: none to activate")
    target_topic: str = _p("reach_target", "PointStamped TCP target [m] in the base frame")
    joint_states_topic: str = _p("joint_states", "ros2_control: JointState input; libfranka: "
                                                  "where the measured joint states are published")
    autostart: bool = _p(False, "enable motion at start (false on a real robot)")
    state_timeout: float = _p(0.02, "ros2_control: joint states older than this stop the arm [s]")
    check_stamps: bool = _p(True, "ros2_control: also judge a joint state's age by its header "
                                  "stamp against this machine's clock")
    velocity_fraction: float = _p(0.9, "fraction of Franka's (FR3: position-dependent) velocity "
                                       "bounds")
    acceleration_fraction: float = _p(-1.0, "fraction of Franka's acceleration limits; -1: the "
                                            "interface's default")
    jerk_fraction: float = _p(-1.0, "fraction of Franka's jerk limits; -1: the interface's default")
    home_speed: float = _p(0.5, "peak joint speed of the move to the ready pose [rad/s]")
    cpu: int = _p(-1, "CPU to run the whole node on, e.g. an isolated core; -1: any")
