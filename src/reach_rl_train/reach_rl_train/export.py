"""Export a trained actor-critic as a self-contained contract-3 ONNX policy file: the graph ends
with the training's command limits (policy_command), the metadata records them and the target
type (point, or pose with its orientation range); a point policy has no target_quat input."""
import inspect
import json
import math
import os
import warnings
from typing import Dict

import numpy as np
import torch

from reach_rl_core import franka_model
from reach_rl_core import policy_file as contract
from reach_rl_core.orientation import matrix_to_quaternion, rotation_from_rpy
from reach_rl_train import torch_arrays  # noqa: F401  (reach_rl_core's math on tensors)
from reach_rl_train import __version__
from reach_rl_train.actor_critic import ActorCritic, PolicyGraph
from reach_rl_train.config import TrainConfig, action_scales, task_filter_limits
from reach_rl_train.pose_target import POINT, POSE, input_names

OPSET = 17


def policy_metadata(cfg: TrainConfig) -> Dict[str, str]:
    """The ``metadata_props`` a deploy reads to accept or refuse the file."""
    t = cfg.task
    metadata = {
        contract.KEY_CONTRACT: contract.CONTRACT_VERSION,
        contract.KEY_TARGET_TYPE: t.target,
        contract.KEY_ROBOT: t.robot,
        contract.KEY_POLICY_DT: repr(float(t.policy_dt)),
        contract.KEY_JOINT_NAMES: json.dumps(list(franka_model.joint_names(t.robot))),
        contract.KEY_TARGET_BOX: json.dumps({"min": list(t.target_min), "max": list(t.target_max)}),
        contract.KEY_VERSION: "reach_rl " + __version__,
        contract.KEY_TRAIN_CONFIG: cfg.to_json(),
        # the filter limits the task's commands went through (task.interface and overrides)
        contract.KEY_COMMAND_LIMITS: contract.CommandLimits.of(task_filter_limits(t)).to_json(),
    }
    if t.target == POSE:
        metadata[contract.KEY_ORIENTATION_RANGE] = json.dumps({"down_cone": float(t.down_cone)})
    return metadata


def example_inputs(batch: int = 1, seed: int = 0, target_type: str = POINT):
    """Plausible raw inputs (around the ready pose), in contract order; pose targets: with unit
    quaternions (x, y, z, w) near pointing down, any yaw, either sign (drawn last: the other
    inputs are the point policy's)."""
    g = torch.Generator().manual_seed(seed)
    ready = torch.tensor(franka_model.READY_POSE, dtype=torch.float32)
    joint_pos = ready + 0.3 * (torch.rand(batch, 7, generator=g) - 0.5)
    joint_vel = 0.5 * (torch.rand(batch, 7, generator=g) - 0.5)
    target = torch.tensor([0.45, 0.0, 0.4]) + 0.2 * (torch.rand(batch, 3, generator=g) - 0.5)
    prev_command = 0.5 * (torch.rand(batch, 7, generator=g) - 0.5)
    if target_type == POINT:
        return joint_pos, joint_vel, target, prev_command
    roll, pitch, yaw = (torch.rand(3, batch, generator=g, dtype=torch.float64) - 0.5) * torch.tensor(
        [[0.6], [0.6], [2.0 * math.pi]], dtype=torch.float64)
    quat = matrix_to_quaternion(rotation_from_rpy(roll, pitch + math.pi, yaw))
    sign = torch.where(torch.rand(batch, 1, generator=g) < 0.5, -1.0, 1.0)
    return joint_pos, joint_vel, target, (sign * quat).float(), prev_command


def export_policy(actor_critic: ActorCritic, cfg: TrainConfig, path: str) -> float:
    """Write the policy file at ``path``; returns the max |torch - onnxruntime| on test inputs."""
    import onnx

    if actor_critic.target_type != cfg.task.target:
        raise ValueError("a %s policy cannot be exported as task.target=%s"
                         % (actor_critic.target_type, cfg.task.target))
    graph = PolicyGraph(actor_critic, action_scales(cfg.task), task_filter_limits(cfg.task),
                        cfg.task.policy_dt, cfg.ppo.deterministic_command).to("cpu").eval()
    names = list(input_names(cfg.task.target))
    kwargs = dict(input_names=names, output_names=[contract.OUTPUT_NAME], opset_version=OPSET,
                  dynamic_axes={n: {0: "batch"} for n in names + [contract.OUTPUT_NAME]})
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter needs no onnxscript, and runs on old torch
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example_inputs(target_type=cfg.task.target), tmp, **kwargs)
    model = onnx.load(tmp)
    for key, value in policy_metadata(cfg).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, tmp)
    os.replace(tmp, path)
    return max_abs_diff(graph, path)


def max_abs_diff(graph: PolicyGraph, path: str, batch: int = 256) -> float:
    """Largest |torch - onnxruntime| over a batch of test inputs (the file read and run as a
    deploy does, :class:`reach_rl_deploy.policy_runtime.Policy`)."""
    from reach_rl_deploy.policy_runtime import Policy

    target_type = graph.encoder.target_type
    inputs = example_inputs(batch, seed=1, target_type=target_type)
    with torch.no_grad():
        expected = graph(*inputs).numpy()
    signals = {n: x.numpy() for n, x in zip(input_names(target_type), inputs)}
    got = Policy(path).run_batch(**signals)
    return float(np.abs(expected - got).max())
