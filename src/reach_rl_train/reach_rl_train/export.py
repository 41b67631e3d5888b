"""Export a trained actor-critic as a self-contained contract-2 ONNX policy file: the graph ends
with the training's command limits (policy_command), the metadata records them."""
import inspect
import json
import os
import warnings
from typing import Dict

import numpy as np
import torch

from reach_rl_core import franka_model
from reach_rl_core import policy_file as contract
from reach_rl_train import torch_arrays  # noqa: F401  (reach_rl_core's math on tensors)
from reach_rl_train import __version__
from reach_rl_train.actor_critic import ActorCritic, PolicyGraph
from reach_rl_train.config import TrainConfig, task_filter_limits

OPSET = 17


def policy_metadata(cfg: TrainConfig) -> Dict[str, str]:
    """The ``metadata_props`` a deploy reads to accept or refuse the file."""
    t = cfg.task
    return {
        contract.KEY_CONTRACT: contract.CONTRACT_VERSION,
        contract.KEY_ROBOT: t.robot,
        contract.KEY_POLICY_DT: repr(float(t.policy_dt)),
        contract.KEY_JOINT_NAMES: json.dumps(list(franka_model.joint_names(t.robot))),
        contract.KEY_TARGET_BOX: json.dumps({"min": list(t.target_min), "max": list(t.target_max)}),
        contract.KEY_VERSION: "reach_rl " + __version__,
        contract.KEY_TRAIN_CONFIG: cfg.to_json(),
        # the filter limits the task's commands went through (task.interface and overrides)
        contract.KEY_COMMAND_LIMITS: contract.CommandLimits.of(task_filter_limits(t)).to_json(),
    }


def example_inputs(batch: int = 1, seed: int = 0):
    """Plausible raw inputs (around the ready pose), in contract order."""
    g = torch.Generator().manual_seed(seed)
    ready = torch.tensor(franka_model.READY_POSE, dtype=torch.float32)
    joint_pos = ready + 0.3 * (torch.rand(batch, 7, generator=g) - 0.5)
    joint_vel = 0.5 * (torch.rand(batch, 7, generator=g) - 0.5)
    target = torch.tensor([0.45, 0.0, 0.4]) + 0.2 * (torch.rand(batch, 3, generator=g) - 0.5)
    prev_command = 0.5 * (torch.rand(batch, 7, generator=g) - 0.5)
    return joint_pos, joint_vel, target, prev_command


def export_policy(actor_critic: ActorCritic, cfg: TrainConfig, path: str) -> float:
    """Write the policy file at ``path``; returns the max |torch - onnxruntime| on test inputs."""
    import onnx

    graph = PolicyGraph(actor_critic, cfg.task.action_scale, task_filter_limits(cfg.task),
                        cfg.task.policy_dt, cfg.ppo.deterministic_command).to("cpu").eval()
    names = list(contract.INPUT_SHAPES)
    kwargs = dict(input_names=names, output_names=[contract.OUTPUT_NAME], opset_version=OPSET,
                  dynamic_axes={n: {0: "batch"} for n in names + [contract.OUTPUT_NAME]})
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter needs no onnxscript, and runs on old torch
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example_inputs(), tmp, **kwargs)
    model = onnx.load(tmp)
    for key, value in policy_metadata(cfg).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, tmp)
    os.replace(tmp, path)
    return max_abs_diff(graph, path)


def max_abs_diff(graph: PolicyGraph, path: str, batch: int = 256) -> float:
    """Largest |torch - onnxruntime| over a batch of test inputs."""
    from reach_rl_deploy.policy_runtime import Policy

    inputs = example_inputs(batch, seed=1)
    with torch.no_grad():
        expected = graph(*inputs).numpy()
    got = Policy(path).run_batch(**{n: x.numpy() for n, x in zip(contract.INPUT_SHAPES, inputs)})
    return float(np.abs(expected - got).max())
