"""A pose policy file for the deploy tests, until a trained one is committed: the committed FR3
point policy (policies/fr3_ros2_control.onnx) with a ``target_quat`` [batch, 4] input that the
graph reads but that changes nothing (its product with a zero matrix is added to the command),
and contract-3 pose metadata (target type "pose", ``down_cone`` 0 rad: straight down, any yaw).
It reaches positions as the point policy does, whatever orientation it is given."""
import json
import os

import pytest

POINT_POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies",
                            "fr3_ros2_control.onnx")


def make_pose_policy(path: str, down_cone: float = 0.0, point_policy: str = POINT_POLICY) -> str:
    """Write the pose policy built from ``point_policy`` at ``path``, trained (so its metadata
    says) for TCP z axes within ``down_cone`` [rad] of straight down; returns ``path``. Skips the
    test where the onnx package is missing."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    from reach_rl_core.policy_file import (CONTRACT_VERSION, KEY_CONTRACT, KEY_ORIENTATION_RANGE,
                                           KEY_TARGET_TYPE, OUTPUT_NAME, POSE)

    model = onnx.load(point_policy)
    graph = model.graph
    point_output = "point_" + OUTPUT_NAME
    for node in graph.node:
        node.output[:] = [point_output if o == OUTPUT_NAME else o for o in node.output]
    graph.initializer.append(numpy_helper.from_array(np.zeros((4, 7), np.float32), "quat_zero"))
    graph.node.extend([
        helper.make_node("MatMul", ["target_quat", "quat_zero"], ["quat_term"]),
        helper.make_node("Add", [point_output, "quat_term"], [OUTPUT_NAME])])
    graph.input.append(helper.make_tensor_value_info("target_quat", TensorProto.FLOAT,
                                                     ["batch", 4]))
    metadata = {p.key: p.value for p in model.metadata_props}
    metadata.update({KEY_CONTRACT: CONTRACT_VERSION, KEY_TARGET_TYPE: POSE,
                     KEY_ORIENTATION_RANGE: json.dumps({"down_cone": down_cone})})
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
