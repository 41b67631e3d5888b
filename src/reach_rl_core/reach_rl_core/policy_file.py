"""The policy file, contract 3: an ONNX graph that maps raw robot signals to the joint velocity
command the policy was trained to send.

Inputs (float32, dynamic batch B; an input the policy ignores may be absent):
  ``joint_pos``    [B, 7] rad, joint order of ``reach_rl/joint_names``
  ``joint_vel``    [B, 7] rad/s
  ``target_pos``   [B, 3] m, TCP target (``<robot>_hand_tcp``) in the arm's base frame
  ``target_quat``  [B, 4] unit quaternion (x, y, z, w): the TCP frame's target orientation in
                   the base frame ``<robot>_link0``; pose policies only
  ``prev_command`` [B, 7] rad/s, the command sent at the previous policy step (zeros at start)
Output: ``joint_vel_cmd`` [B, 7] rad/s, the command for the next ``policy_dt``: the policy's
goal already clamped to the training's velocity bounds and moved from ``prev_command`` by at
most the training's acceleration times ``policy_dt`` (``command_limits`` below). Applied as
it is at the policy rate, it reproduces what the policy did in training; a deploy's safety
filter stays the independent guard on every command.

Metadata (``metadata_props``): ``reach_rl/contract`` = "3", ``reach_rl/target_type``
("point": position targets, any orientation; "pose": position and orientation, with
``reach_rl/orientation_range``, JSON {"down_cone": rad}: the TCP's z axis within that angle of
straight down, any yaw), ``reach_rl/robot`` (fr3|panda),
``reach_rl/policy_dt`` (s), ``reach_rl/joint_names`` (JSON list), ``reach_rl/target_box``
(JSON {"min": [x, y, z], "max": [x, y, z]}, metres, base frame: where the policy was trained
to reach), ``reach_rl/command_limits`` (JSON: {"interface": "ros2_control"|"libfranka",
"velocity_fraction": f, "accel": [7 rad/s^2], "jerk": [7 rad/s^3], "brake_margin": rad}; files
from before the stop-time speed cap was retired also carry "speed_cap", ignored: their graph
applies it itself), ``reach_rl/version`` and ``reach_rl/train_config`` (JSON, informational).
:func:`check_command_limits` refuses a policy trained with looser limits than a deploy filter
enforces. Contract-2 files are point policies (contract 3 without the target type). Contract-1
files (a raw goal, limits only in the training config) are refused with the command that
re-exports them.

This module reads and checks the metadata (numpy only); :mod:`reach_rl_deploy.policy_runtime`
runs the file with onnxruntime.
"""
import json
import math
from dataclasses import dataclass
from typing import Dict, NamedTuple, Sequence, Tuple


from reach_rl_core.franka_model import NUM_JOINTS, ROBOTS

CONTRACT_VERSION = "3"
POINT_CONTRACT = "2"  # read as a point policy
INPUT_SHAPES = {"joint_pos": NUM_JOINTS, "joint_vel": NUM_JOINTS, "target_pos": 3,
                "target_quat": 4, "prev_command": NUM_JOINTS}
POINT, POSE = "point", "pose"
TARGET_TYPES = (POINT, POSE)
# s each target is held before the next one, per target type: in training (task.target_period_s
# -1) and by reach-rl-targets. A pose target may ask joint 7 to turn through most of its 6 rad
# range, 3.3 s at 0.9 of its 2.61 rad/s and 3 rad/s^2: in 3 s periods such targets could not be
# reached (best held-out success 82.0 % vs 90.1 % at 4 s: docs/training.md, issue 32).
TARGET_PERIOD_S = {POINT: 3.0, POSE: 4.0}
POINT_INPUTS = tuple(name for name in INPUT_SHAPES if name != "target_quat")
OUTPUT_NAME = "joint_vel_cmd"
KEY_CONTRACT = "reach_rl/contract"
KEY_ROBOT = "reach_rl/robot"
KEY_POLICY_DT = "reach_rl/policy_dt"
KEY_JOINT_NAMES = "reach_rl/joint_names"
KEY_TARGET_BOX = "reach_rl/target_box"
KEY_VERSION = "reach_rl/version"
KEY_TRAIN_CONFIG = "reach_rl/train_config"
KEY_COMMAND_LIMITS = "reach_rl/command_limits"
KEY_TARGET_TYPE = "reach_rl/target_type"
KEY_ORIENTATION_RANGE = "reach_rl/orientation_range"
REQUIRED_KEYS = (KEY_CONTRACT, KEY_ROBOT, KEY_POLICY_DT, KEY_JOINT_NAMES, KEY_TARGET_BOX,
                 KEY_COMMAND_LIMITS)


class PolicyFileError(ValueError):
    """The policy file is missing, malformed, or does not match the robot it is meant for."""


class CommandLimits(NamedTuple):
    """The safety filter limits a policy was trained under (``reach_rl/command_limits``)."""

    interface: str  # deploy interface (filter_limits.INTERFACES)
    velocity_fraction: float  # of Franka's velocity bounds
    accel: Tuple[float, ...]  # rad/s^2 per joint
    jerk: Tuple[float, ...]  # rad/s^3 per joint
    brake_margin: float  # rad

    @classmethod
    def of(cls, limits) -> "CommandLimits":
        """From a ``filter_limits.FilterLimits``."""
        return cls(limits.interface, float(limits.velocity_fraction),
                   tuple(float(a) for a in limits.accel), tuple(float(j) for j in limits.jerk),
                   float(limits.brake_margin))

    def to_json(self) -> str:
        return json.dumps(self._asdict())

    @classmethod
    def from_json(cls, text: str) -> "CommandLimits":
        """ValueError, KeyError or TypeError when ``text`` is not such a record."""
        d = json.loads(text)
        if not isinstance(d["interface"], str) or any(
                len(d[k]) != NUM_JOINTS for k in ("accel", "jerk")):
            raise ValueError("command_limits needs an interface and 7 values per joint list")
        return cls(d["interface"], float(d["velocity_fraction"]),
                   tuple(float(v) for v in d["accel"]), tuple(float(v) for v in d["jerk"]),
                   float(d["brake_margin"]))


@dataclass(frozen=True)
class PolicyInfo:
    """What a deploy needs to know about a policy file, read from its metadata."""

    path: str
    robot: str
    policy_dt: float  # s
    joint_names: Tuple[str, ...]
    target_min: Tuple[float, float, float]  # m, base frame
    target_max: Tuple[float, float, float]  # m, base frame
    inputs: Tuple[str, ...]
    version: str
    train_config: Dict
    command_limits: CommandLimits
    target_type: str = POINT  # TARGET_TYPES
    down_cone: float = 0.0  # rad: pose targets' z axis within this angle of down (pose only)

    def target_in_box(self, target: Sequence[float], margin: float = 0.0) -> bool:
        """Whether ``target`` [m, base frame] lies in the trained target box grown by ``margin`` [m]."""
        return all(lo - margin <= t <= hi + margin
                   for t, lo, hi in zip(target, self.target_min, self.target_max))


def parse_metadata(path: str, metadata: Dict[str, str], inputs: Sequence[str]) -> PolicyInfo:
    """Check contract-3 (or contract-2: point) metadata and turn it into a PolicyInfo;
    PolicyFileError says what is wrong."""
    if metadata.get(KEY_CONTRACT) == "1":
        raise PolicyFileError(
            "%s: contract 1 (the policy's raw velocity goal, its command limits only in the "
            "training config); this deploy reads contract %s, whose output is the limited command: "
            "re-export it from its training checkpoint, reach-rl-export <run>_logs/checkpoint.pt "
            "--out <new>.onnx (no retraining)" % (path, CONTRACT_VERSION))
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise PolicyFileError("%s: not a reach_rl policy file, metadata lacks %s (export it with "
                              "reach-rl-train)" % (path, ", ".join(missing)))
    if metadata[KEY_CONTRACT] not in (CONTRACT_VERSION, POINT_CONTRACT):
        raise PolicyFileError("%s: policy contract %r, this deploy reads contracts %s and %s: "
                              "re-export the policy with a matching reach_rl"
                              % (path, metadata[KEY_CONTRACT], POINT_CONTRACT, CONTRACT_VERSION))
    target_type, down_cone = _target_type(path, metadata, inputs)
    robot = metadata[KEY_ROBOT]
    if robot not in ROBOTS:
        raise PolicyFileError("%s: unknown robot %r in metadata" % (path, robot))
    try:
        policy_dt = float(metadata[KEY_POLICY_DT])
        joint_names = tuple(json.loads(metadata[KEY_JOINT_NAMES]))
        box = json.loads(metadata[KEY_TARGET_BOX])
        target_min = tuple(float(v) for v in box["min"])
        target_max = tuple(float(v) for v in box["max"])
        train_config = json.loads(metadata.get(KEY_TRAIN_CONFIG, "{}"))
        command_limits = CommandLimits.from_json(metadata[KEY_COMMAND_LIMITS])
    except (ValueError, KeyError, TypeError) as exc:
        raise PolicyFileError("%s: malformed metadata (%s)" % (path, exc)) from None
    if not (math.isfinite(policy_dt) and 0.0 < policy_dt <= 1.0):
        raise PolicyFileError("%s: policy_dt %r s is not in (0, 1]" % (path, policy_dt))
    if len(joint_names) != NUM_JOINTS or not all(isinstance(n, str) for n in joint_names):
        raise PolicyFileError("%s: joint_names must list %d names, got %r" % (path, NUM_JOINTS,
                                                                              joint_names))
    if len(target_min) != 3 or len(target_max) != 3 or any(
            lo > hi for lo, hi in zip(target_min, target_max)):
        raise PolicyFileError("%s: target_box %r is not a 3-D box" % (path, box))
    return PolicyInfo(path=path, robot=robot, policy_dt=policy_dt, joint_names=joint_names,
                      target_min=target_min, target_max=target_max, inputs=tuple(inputs),
                      version=metadata.get(KEY_VERSION, "unknown"), train_config=train_config,
                      command_limits=command_limits, target_type=target_type, down_cone=down_cone)


def _target_type(path: str, metadata: Dict[str, str], inputs: Sequence[str]) -> Tuple[str, float]:
    """(target type, down cone [rad]) of a file's metadata; PolicyFileError says what is wrong."""
    if metadata[KEY_CONTRACT] == POINT_CONTRACT:
        target_type = POINT
    else:
        target_type = metadata.get(KEY_TARGET_TYPE, "")
        if target_type not in TARGET_TYPES:
            raise PolicyFileError("%s: target type %r in metadata, expected one of %s"
                                  % (path, target_type, ", ".join(TARGET_TYPES)))
    if (target_type == POSE) != ("target_quat" in inputs):
        raise PolicyFileError("%s: a %s policy %s the target_quat input" % (
            path, target_type, "lacks" if target_type == POSE else "has"))
    if target_type == POINT:
        return target_type, 0.0
    try:
        down_cone = float(json.loads(metadata[KEY_ORIENTATION_RANGE])["down_cone"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PolicyFileError("%s: a pose policy needs %s {\"down_cone\": rad} (%s)"
                              % (path, KEY_ORIENTATION_RANGE, exc)) from None
    if not (math.isfinite(down_cone) and 0.0 <= down_cone <= math.pi):
        raise PolicyFileError("%s: down_cone %r rad is not in [0, pi]" % (path, down_cone))
    return target_type, down_cone


def check_command_limits(info: PolicyInfo, limits) -> None:
    """PolicyFileError unless the policy ``info`` was trained under limits no looser than the
    ``filter_limits.FilterLimits`` ``limits`` a deploy enforces: the same interface, and no
    larger velocity fraction or acceleration (per joint, beyond 1e-9 relative)."""
    fix = "retrain with reach-rl-train --interface %s (and the deploy's fractions)" % limits.interface
    trained = info.command_limits
    if trained.interface != limits.interface:
        raise PolicyFileError("%s was trained for the %s interface, the deploy runs %s: %s"
                              % (info.path, trained.interface, limits.interface, fix))

    def looser(got, enforced):
        return got > enforced * (1.0 + 1e-9)

    problems = []
    if looser(trained.velocity_fraction, limits.velocity_fraction):
        problems.append("velocity_fraction %g (deploy %g)" % (trained.velocity_fraction,
                                                             limits.velocity_fraction))
    for j in range(NUM_JOINTS):
        if looser(trained.accel[j], float(limits.accel[j])):
            problems.append("joint %d acceleration %.4g rad/s^2 (deploy %.4g)"
                            % (j + 1, trained.accel[j], limits.accel[j]))
    if problems:
        raise PolicyFileError("%s was trained with looser limits than the %s deploy filter enforces: "
                              "%s: %s" % (info.path, limits.interface, ", ".join(problems), fix))
