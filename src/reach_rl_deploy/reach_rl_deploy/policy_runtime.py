"""A policy file (:mod:`reach_rl_core.policy_file`, contract 3 or 2) run with onnxruntime: what
the deploy node calls each policy step, and what training judges its exported files with."""
import os
from typing import Optional, Sequence

import numpy as np
import onnxruntime as ort

from reach_rl_core.franka_model import NUM_JOINTS
from reach_rl_core.policy_file import (INPUT_SHAPES, OUTPUT_NAME, POSE, PolicyFileError,
                                       parse_metadata)


class Policy:
    """A policy file opened with onnxruntime (single-threaded, CPU).

    ``policy(joint_pos, joint_vel, target_pos, prev_command, target_quat=None)`` takes 1-D
    arrays (rad, rad/s, m, rad/s; ``target_quat``: the unit quaternion (x, y, z, w) of the TCP
    target's orientation in the base frame, given to a pose policy and only to one) and returns
    the joint velocity command [rad/s] as a float64 array of 7.
    """

    def __init__(self, path: str, threads: int = 1):
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
            raise PolicyFileError("%s: unexpected inputs %s; the contract allows %s"
                                  % (path, unknown, sorted(INPUT_SHAPES)))
        for name, node in inputs.items():
            if node.type != "tensor(float)" or node.shape[-1] != INPUT_SHAPES[name]:
                raise PolicyFileError("%s: input %s must be float32 [B, %d], is %s %s"
                                      % (path, name, INPUT_SHAPES[name], node.type, node.shape))
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs != [OUTPUT_NAME]:
            raise PolicyFileError("%s: outputs %s, the contract has exactly [%r]"
                                  % (path, outputs, OUTPUT_NAME))
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.info = parse_metadata(path, metadata, list(inputs))
        self.pose = self.info.target_type == POSE  # takes target_quat
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

    def __call__(self, joint_pos, joint_vel, target_pos, prev_command,
                 target_quat=None) -> np.ndarray:
        """ValueError when ``target_quat`` is given to a point policy or missing for a pose one."""
        if (target_quat is not None) != self.pose:
            raise ValueError("%s is a %s policy: it takes %s" % (
                self.info.path, self.info.target_type,
                "a target orientation (target_quat)" if self.pose else "no target orientation"))
        signals = {"joint_pos": joint_pos, "joint_vel": joint_vel, "target_pos": target_pos,
                   "target_quat": target_quat, "prev_command": prev_command}
        for name, feed in self._feeds.items():
            feed[0] = signals[name]
        self.session.run_with_iobinding(self._binding)
        return self._output[0].astype(np.float64)

    def run_batch(self, **signals) -> np.ndarray:
        """Batched inference: float32 arrays [B, n] by input name -> commands [B, 7] rad/s."""
        feeds = {name: np.asarray(signals[name], np.float32) for name in self._feeds}
        return self.session.run([OUTPUT_NAME], feeds)[0]
