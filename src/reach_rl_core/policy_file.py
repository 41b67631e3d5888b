"""The policy file, contract 2: an ONNX graph that maps raw robot signals to the joint velocity
command the policy was trained to send.

Inputs (float32, dynamic batch B; an input the policy ignores may be absent):
  ``joint_pos``    [B, 7] rad, joint order of ``reach_rl/joint_names``
  ``joint_vel``    [B, 7] rad/s
  ``target_pos``   [B, 3] m, TCP target in the arm's base frame
  ``prev_command`` [B, 7] rad/s, the command sent at the previous policy step (zeros at start)
Output: ``joint_vel_cmd`` [B, 7] rad/s, the command for the next ``policy_dt``: the policy's
goal already clamped to the training's velocity bounds and moved from ``prev_command`` by at
most the training's acceleration times ``policy_dt`` (``command_limits`` below). Applied as
it is at the policy rate, it reproduces what the policy did in training; a deploy's safety
filter stays the independent guard on every message.

Metadata (``metadata_props``): ``reach_rl/contract`` = "2", ``reach_rl/robot`` (fr3|panda),
``reach_rl/policy_dt`` (s), ``reach_rl/joint_names`` (JSON list), ``reach_rl/target_box``
(JSON {"min": [x, y, z], "max": [x, y, z]}, metres, base frame: where the policy was trained
to reach), ``reach_rl/command_limits`` (JSON: {"interface": "ros2_control"|"libfranka",
"velocity_fraction": f, "accel": [7 rad/s^2], "jerk": [7 rad/s^3], "speed_cap": [7 rad/s,
null: none], "brake_margin": rad}), ``reach_rl/version`` and ``reach_rl/train_config`` (JSON,
informational). :func:`check_command_limits` refuses a policy trained with looser limits than
a deploy filter enforces. Contract-1 files (a raw goal, limits only in the training config)
are refused with the command that re-exports them.

This module loads and checks such a file with onnxruntime; it never imports torch.
"""
import json
import math
import os
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from reach_rl_core.franka_model import NUM_JOINTS, ROBOTS

CONTRACT_VERSION = "2"
INPUT_SHAPES = {"joint_pos": NUM_JOINTS, "joint_vel": NUM_JOINTS, "target_pos": 3,
                "prev_command": NUM_JOINTS}
OUTPUT_NAME = "joint_vel_cmd"
KEY_CONTRACT = "reach_rl/contract"
KEY_ROBOT = "reach_rl/robot"
KEY_POLICY_DT = "reach_rl/policy_dt"
KEY_JOINT_NAMES = "reach_rl/joint_names"
KEY_TARGET_BOX = "reach_rl/target_box"
KEY_VERSION = "reach_rl/version"
KEY_TRAIN_CONFIG = "reach_rl/train_config"
KEY_COMMAND_LIMITS = "reach_rl/command_limits"
REQUIRED_KEYS = (KEY_CONTRACT, KEY_ROBOT, KEY_POLICY_DT, KEY_JOINT_NAMES, KEY_TARGET_BOX,
                 KEY_COMMAND_LIMITS)


class PolicyFileError(ValueError):
    """The policy file is missing, malformed, or does not match the robot it is meant for."""


class CommandLimits(NamedTuple):
    """The safety filter limits a policy was trained under (``reach_rl/command_limits``)."""

    interface: str  # deploy interface (safety_filter.INTERFACES)
    velocity_fraction: float  # of Franka's velocity bounds
    accel: Tuple[float, ...]  # rad/s^2 per joint
    jerk: Tuple[float, ...]  # rad/s^3 per joint
    speed_cap: Tuple[Optional[float], ...]  # rad/s per joint, None: no cap
    brake_margin: float  # rad

    @classmethod
    def of(cls, limits) -> "CommandLimits":
        """From a ``safety_filter.FilterLimits``."""
        return cls(limits.interface, float(limits.velocity_fraction),
                   tuple(float(a) for a in limits.accel), tuple(float(j) for j in limits.jerk),
                   tuple(float(c) if math.isfinite(c) else None for c in limits.speed_cap),
                   float(limits.brake_margin))

    def to_json(self) -> str:
        return json.dumps(self._asdict())

    @classmethod
    def from_json(cls, text: str) -> "CommandLimits":
        """ValueError, KeyError or TypeError when ``text`` is not such a record."""
        d = json.loads(text)
        if not isinstance(d["interface"], str) or any(
                len(d[k]) != NUM_JOINTS for k in ("accel", "jerk", "speed_cap")):
            raise ValueError("command_limits needs an interface and 7 values per joint list")
        return cls(d["interface"], float(d["velocity_fraction"]),
                   tuple(float(v) for v in d["accel"]), tuple(float(v) for v in d["jerk"]),
                   tuple(None if v is None else float(v) for v in d["speed_cap"]),
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

    def target_in_box(self, target: Sequence[float], margin: float = 0.0) -> bool:
        """Whether ``target`` [m, base frame] lies in the trained target box grown by ``margin`` [m]."""
        return all(lo - margin <= t <= hi + margin
                   for t, lo, hi in zip(target, self.target_min, self.target_max))


def parse_metadata(path: str, metadata: Dict[str, str], inputs: Sequence[str]) -> PolicyInfo:
    """Check contract-2 metadata and turn it into a PolicyInfo; PolicyFileError says what is wrong."""
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
    if metadata[KEY_CONTRACT] != CONTRACT_VERSION:
        raise PolicyFileError("%s: policy contract %r, this deploy reads contract %s only: re-export "
                              "the policy with a matching reach_rl" % (path, metadata[KEY_CONTRACT],
                                                                      CONTRACT_VERSION))
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
                      command_limits=command_limits)


def check_command_limits(info: PolicyInfo, limits) -> None:
    """PolicyFileError unless the policy ``info`` was trained under limits no looser than the
    ``safety_filter.FilterLimits`` ``limits`` a deploy enforces: the same interface, and no
    larger velocity fraction, acceleration or speed cap (per joint, beyond 1e-9 relative)."""
    fix = "retrain with reach-rl-train --interface %s (and the deploy's fractions and " \
          "max_stop_time)" % limits.interface
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
        cap = math.inf if trained.speed_cap[j] is None else trained.speed_cap[j]
        for name, got, enforced, unit in (("acceleration", trained.accel[j], limits.accel[j], "rad/s^2"),
                                          ("speed cap", cap, limits.speed_cap[j], "rad/s")):
            if looser(got, float(enforced)):
                problems.append("joint %d %s %.4g %s (deploy %.4g)" % (j + 1, name, got, unit, enforced))
    if problems:
        raise PolicyFileError("%s was trained with looser limits than the %s deploy filter enforces: "
                              "%s: %s" % (info.path, limits.interface, ", ".join(problems), fix))


class Policy:
    """A contract-2 policy file opened with onnxruntime (single-threaded, CPU).

    ``policy(joint_pos, joint_vel, target_pos, prev_command)`` takes 1-D arrays (rad, rad/s,
    m, rad/s) and returns the joint velocity command [rad/s] as a float64 array of 7.
    """

    def __init__(self, path: str, threads: int = 1):
        import onnxruntime as ort

        if not os.path.isfile(path):
            raise PolicyFileError("policy file %r does not exist: train one with reach-rl-train "
                                  "or pass the path of an exported .onnx file" % path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise PolicyFileError("%s: not a readable ONNX model (%s)" % (path, str(exc).strip()[:200])
                                  ) from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        unknown = sorted(set(inputs) - set(INPUT_SHAPES))
        if unknown:
            raise PolicyFileError("%s: unexpected inputs %s; contract 2 allows %s"
                                  % (path, unknown, sorted(INPUT_SHAPES)))
        for name, node in inputs.items():
            if node.type != "tensor(float)" or node.shape[-1] != INPUT_SHAPES[name]:
                raise PolicyFileError("%s: input %s must be float32 [B, %d], is %s %s"
                                      % (path, name, INPUT_SHAPES[name], node.type, node.shape))
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs != [OUTPUT_NAME]:
            raise PolicyFileError("%s: outputs %s, contract 2 has exactly [%r]"
                                  % (path, outputs, OUTPUT_NAME))
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.info = parse_metadata(path, metadata, list(inputs))
        # One observation per call at 1 kHz: inputs and output live in fixed buffers bound to the
        # session once, so a call copies the signals in and runs, without building feeds.
        self._feeds = {name: np.zeros((1, INPUT_SHAPES[name]), np.float32) for name in inputs}
        self._output = np.zeros((1, NUM_JOINTS), np.float32)
        self._binding = self.session.io_binding()
        for name, buffer in self._feeds.items():
            self._binding.bind_cpu_input(name, buffer)
        self._binding.bind_output(OUTPUT_NAME, "cpu", 0, np.float32, self._output.shape,
                                  self._output.ctypes.data)

    def check_matches(self, robot: str, joint_names: Optional[Sequence[str]] = None) -> None:
        """PolicyFileError unless the file was trained for ``robot`` with these joint names."""
        if robot != self.info.robot:
            raise PolicyFileError("%s was trained for the %s, but robot is %r: train a policy for "
                                  "the %s or set robot:=%s" % (self.info.path, self.info.robot,
                                                               robot, robot, self.info.robot))
        if joint_names is not None and tuple(joint_names) != self.info.joint_names:
            raise PolicyFileError("%s expects joints %s, the deploy is configured for %s"
                                  % (self.info.path, list(self.info.joint_names), list(joint_names)))

    def __call__(self, joint_pos, joint_vel, target_pos, prev_command) -> np.ndarray:
        signals = {"joint_pos": joint_pos, "joint_vel": joint_vel, "target_pos": target_pos,
                   "prev_command": prev_command}
        for name, feed in self._feeds.items():
            feed[0] = signals[name]
        self.session.run_with_iobinding(self._binding)
        return self._output[0].astype(np.float64)

    def run_batch(self, **signals) -> np.ndarray:
        """Batched inference: float32 arrays [B, n] by input name -> commands [B, 7] rad/s."""
        feeds = {name: np.asarray(signals[name], np.float32) for name in self._feeds}
        return self.session.run([OUTPUT_NAME], feeds)[0]
