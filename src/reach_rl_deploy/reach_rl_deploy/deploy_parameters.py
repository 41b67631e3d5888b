"""The deploy node's parameters, each declared once: name, type (from the default), default,
unit, description and validation (choices or a range).

Everything else reads this declaration: the node declares them from it (read-only, with
descriptor ranges: ``ros2 param describe``), ``franka.launch.py``'s arguments take their
defaults and descriptions from it, ``config/deploy.yaml`` holds only values that differ from
it, and ``docs/parameters.md`` is generated from it (:func:`markdown_table`); a test checks all
four. -1 for ``rt_priority``, ``command_hold``, ``accel_fraction`` or ``jerk_fraction`` means
the interface's value (:data:`reach_rl_core.filter_limits.INTERFACE_DEFAULTS`), filled in by
:meth:`DeployParameters.resolved`.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from reach_rl_core.filter_limits import (DEFAULT_INTERFACE, DEFAULT_STATE_TIMEOUT,
                                         DEFAULT_VELOCITY_FRACTION, INTERFACES,
                                         interface_defaults)
from reach_rl_core.franka_model import ROBOTS

# The arms both deploy interfaces can drive. The Panda is not one: franka_ros2's
# franka_description has no "panda" (its Panda is "fer"), and libfranka >= 0.18 (franky's 0.21)
# talks only to an FR3 on system 5.9 or newer. Training keeps Panda kinematics (task.robot).
DEPLOY_ROBOTS = ("fr3",)
INTERFACE_OWN = -1  # rt_priority, command_hold, fractions: the interface's value


def check_deploy_robot(robot: str, name: str = "robot") -> None:
    """ValueError saying why, unless ``robot`` is an arm the deploy side can drive."""
    if robot in DEPLOY_ROBOTS:
        return
    why = ("franka_description has no panda and libfranka >= 0.18 drives only an FR3 (system "
           ">= 5.9); a Panda needs franka_ros2's 'fer' and libfranka < 0.18, which this package "
           "does not support" if robot in ROBOTS else "expected one of %s" % ", ".join(DEPLOY_ROBOTS))
    raise ValueError("%s %r cannot be deployed: %s" % (name, robot, why))


def _p(default, doc: str, unit: str = "", choices: Sequence[str] = (),
       low: Optional[float] = None, high: Optional[float] = None):
    """One parameter's declaration (``low``..``high``: its range, inclusive; -1 is always
    allowed where the description says so)."""
    return field(default=default, metadata={"doc": doc, "unit": unit, "choices": tuple(choices),
                                            "low": low, "high": high})


@dataclass(frozen=True)
class DeployParameters:
    """deploy_node's parameters (units in each field's declaration)."""

    policy: str = _p("", "policy file (.onnx) written by reach-rl-train")
    robot: str = _p("fr3", "robot model; must match the policy file", choices=DEPLOY_ROBOTS)
    interface: str = _p(DEFAULT_INTERFACE, "ros2_control: one trajectory per policy step for "
                                      "franka_ros2's joint_trajectory_controller; libfranka: "
                                      "drive the arm through franky-control, whose C++ thread "
                                      "runs Franka's 1 kHz loop (needs robot_ip)",
                        choices=INTERFACES)
    robot_ip: str = _p("", "libfranka: the arm's control unit (127.0.0.1 for franka-sim)")
    realtime: bool = _p(False, "libfranka: require real-time scheduling (true on a robot PC with "
                               "a real-time kernel)")
    rt_priority: int = _p(INTERFACE_OWN, "SCHED_FIFO priority; ros2_control: of every thread of "
                                         "the node (below the controller manager's 50); libfranka: "
                                         "of the 1 kHz control thread alone. Needs root or "
                                         "CAP_SYS_NICE, else a warning; 0: the ordinary "
                                         "scheduler; -1: the interface's", low=-1, high=99)
    command_hold: float = _p(float(INTERFACE_OWN), "how long the arm keeps the last command when "
                                                   "no new one comes, before it brakes to rest on "
                                                   "its own; -1: the interface's", "s",
                             low=-1.0, high=1.0)
    collision_torque_thresholds: Tuple[float, ...] = _p(
        (20.0, 20.0, 18.0, 18.0, 16.0, 14.0, 12.0),
        "libfranka: joint torque thresholds of the contact and collision reflexes, 7 joints, set "
        "at connection (Franka's examples' values)", "Nm")
    collision_force_thresholds: Tuple[float, ...] = _p(
        (20.0, 20.0, 20.0, 25.0, 25.0, 25.0),
        "libfranka: end-effector force (x, y, z) and torque (roll, pitch, yaw) thresholds of the "
        "contact and collision reflexes, set at connection", "N, Nm")
    joint_impedance: Tuple[float, ...] = _p(
        (3000.0, 3000.0, 3000.0, 2500.0, 2500.0, 2000.0, 2000.0),
        "libfranka: stiffness of the robot's internal joint impedance controller, set at "
        "connection", "Nm/rad")
    joint_prefix: str = _p("", "joint name prefix; empty: <robot>_joint")
    trajectory_topic: str = _p("joint_trajectory_controller/joint_trajectory",
                               "ros2_control: trajectory_msgs/JointTrajectory, one per policy step")
    activate_controller: str = _p("", "ros2_control: the controller ~/enable activates through "
                                      "/controller_manager/switch_controller (spawned inactive); "
                                      "empty: none to activate")
    target_topic: str = _p("reach_target", "TCP targets in the base frame <robot>_link0 (or an "
                                           "empty frame id): geometry_msgs/PointStamped for a "
                                           "point policy, geometry_msgs/PoseStamped for a pose "
                                           "policy (the file's reach_rl/target_type)")
    joint_states_topic: str = _p("joint_states", "ros2_control: JointState input; libfranka: "
                                                  "where the measured joint states are published")
    autostart: bool = _p(False, "enable motion at start (false on a real robot: call ~/enable)")
    state_timeout: float = _p(DEFAULT_STATE_TIMEOUT, "ros2_control: joint states older than this "
                                                     "stop the arm", "s", low=0.001, high=1.0)
    check_stamps: bool = _p(True, "ros2_control: also judge a joint state's age by its header "
                                  "stamp against this machine's clock")
    velocity_fraction: float = _p(DEFAULT_VELOCITY_FRACTION, "fraction of Franka's (FR3: "
                                                             "position-dependent) velocity bounds",
                                  low=0.01, high=1.0)
    accel_fraction: float = _p(float(INTERFACE_OWN), "fraction of Franka's acceleration limits; "
                                                     "-1: the interface's", low=-1.0, high=1.0)
    jerk_fraction: float = _p(float(INTERFACE_OWN), "fraction of Franka's jerk limits; -1: the "
                                                    "interface's", low=-1.0, high=1.0)
    home_speed: float = _p(0.5, "peak joint speed of the move to the ready pose", "rad/s",
                           low=0.01, high=1.0)
    cpu: int = _p(-1, "CPU to run the whole node on, e.g. an isolated core; -1: any", low=-1,
                  high=1023)

    def problems(self) -> List[str]:
        """What is wrong with these values against the declaration, one line each."""
        found = []
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta["choices"] and value not in meta["choices"]:
                found.append("%s %r: expected one of %s" % (f.name, value, ", ".join(meta["choices"])))
            low, high = meta["low"], meta["high"]
            allowed = value == INTERFACE_OWN and f.default == INTERFACE_OWN
            if low is not None and not allowed and not low <= value <= high:
                found.append("%s %s: expected %s..%s%s" % (f.name, value, low, high,
                                                          " " + meta["unit"] if meta["unit"] else ""))
        return found

    def resolved(self) -> "DeployParameters":
        """These parameters with every -1 (the interface's) replaced by the interface's value;
        ValueError listing every value outside its declaration."""
        wrong = self.problems()
        if wrong:
            raise ValueError("; ".join(wrong))
        own = interface_defaults(self.interface)

        def given(value, default):
            return default if value == INTERFACE_OWN else value

        return dataclasses.replace(
            self, rt_priority=given(self.rt_priority, own.rt_priority),
            command_hold=given(self.command_hold, own.command_hold),
            accel_fraction=given(self.accel_fraction, own.accel_fraction),
            jerk_fraction=given(self.jerk_fraction, own.jerk_fraction))


def declarations() -> List[dataclasses.Field]:
    """Every parameter's declaration, in order."""
    return list(dataclasses.fields(DeployParameters))


def described(name: str) -> str:
    """The description of parameter ``name`` with its unit and choices, as the node declares it."""
    meta = DeployParameters.__dataclass_fields__[name].metadata
    text = meta["doc"]
    if meta["unit"]:
        text += " [%s]" % meta["unit"]
    if meta["choices"]:
        text += " (one of: %s)" % ", ".join(meta["choices"])
    return text


def _shown(default) -> str:
    """``default`` as it is written in a YAML parameter file."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return str(list(default))
    return str(default) if default != "" else '""'


def markdown_table() -> str:
    """docs/parameters.md: every parameter, from the declaration."""
    rows = ["# deploy_node's parameters", "",
            "Generated from `reach_rl_deploy/deploy_parameters.py` (a test checks this file: "
            "edit the declaration, then run `python -m reach_rl_deploy.deploy_parameters > "
            "docs/parameters.md`). `franka.launch.py` sets `policy`, `robot`, `interface`, "
            "`robot_ip`, `target_topic` and `autostart` from its arguments; "
            "`config/deploy.yaml` holds what differs from these defaults.", "",
            "| name | default | unit | range or choices | description |",
            "|---|---|---|---|---|"]
    for f in declarations():
        meta = f.metadata
        bounds = (", ".join(meta["choices"]) if meta["choices"] else
                  "%s .. %s" % (meta["low"], meta["high"]) if meta["low"] is not None else "")
        rows.append("| `%s` | `%s` | %s | %s | %s |"
                    % (f.name, _shown(f.default), meta["unit"], bounds, meta["doc"]))
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
