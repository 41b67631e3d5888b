"""torch tensors for reach_rl_core's shared math, and the kinematics training runs on a GPU.

Importing this module (every training module that hands tensors to reach_rl_core does; the
package itself does not, as Isaac Gym must load before torch) registers ``torch.Tensor`` with
:func:`reach_rl_core.franka_model.register_array_type`, so the safety filter, self-collision,
actuator lag and kinematics of reach_rl_core run on tensors exactly as on numpy arrays.
Constants they need (limits, link matrices) become one tensor per device and dtype, made at
their first use and reused: no copy to the GPU at every call (inside a CUDA graph capture such
a copy is an error).
"""
import numpy as np
import torch

from reach_rl_core import franka_model
from reach_rl_core.franka_model import NUM_JOINTS

_CONSTANTS = {}  # type: dict  # (device, dtype, host dtype, shape, bytes) -> tensor
_MAX_CONSTANTS = 1024  # bounded, should callers vary their values


def constant(q: torch.Tensor, values, index: bool) -> torch.Tensor:
    """``values`` as a tensor on q's device: q's dtype, or long when ``index``."""
    dtype = torch.long if index else q.dtype
    if isinstance(values, torch.Tensor):
        return values.to(device=q.device, dtype=dtype)
    if torch.jit.is_tracing():  # exporting: the graph keeps its own constants
        return q.new_tensor(values, dtype=dtype)
    host = np.asarray(values)
    key = (q.device, dtype, host.dtype, host.shape, host.tobytes())
    tensor = _CONSTANTS.get(key)
    if tensor is None:
        if len(_CONSTANTS) >= _MAX_CONSTANTS:
            _CONSTANTS.clear()
        tensor = _CONSTANTS[key] = q.new_tensor(values, dtype=dtype)
    return tensor


franka_model.register_array_type(torch.Tensor, torch, constant)

# Per link k, (4, 12): a homogeneous row point p times it gives (A p, B p, C p) of the link's
# transform cos(q) A + sin(q) B + C (franka_model._link_matrices).
_LINK_ROWS = np.concatenate([franka_model._LINK_COS, franka_model._LINK_SIN,
                             franka_model._LINK_CONST], axis=1).transpose(0, 2, 1)


def tcp_position(q: torch.Tensor) -> torch.Tensor:
    """:func:`reach_rl_core.franka_model.tcp_position` [m, base frame] of ``q`` (..., 7) [rad];
    on a GPU (outside an ONNX export) without the (..., 7, 4, 4) link matrices.

    The TCP point, a row, goes through link k as ``cos(q_k) A p + sin(q_k) B p + C p``, with
    (A p, B p, C p) one (..., 4) x (4, 12) matrix product: a few small kernels per link. In
    float64: a float32 product on a GPU may run on TF32 tensor cores (training asks for them,
    for its MLPs), whose 10-bit mantissa would cost millimetres.
    """
    if q.device.type != "cuda" or torch.onnx.is_in_onnx_export():
        return franka_model.tcp_position(q)
    q64 = q.double()
    cos, sin = q64.cos(), q64.sin()
    rows = constant(q64, _LINK_ROWS, False)
    point = constant(q64, franka_model._TCP_IN_LINK7[:, 0], False)  # (4,)
    for k in reversed(range(NUM_JOINTS)):
        parts = point @ rows[k]  # (..., 12)
        point = torch.addcmul(torch.addcmul(parts[..., 8:], cos[..., k:k + 1], parts[..., :4]),
                              sin[..., k:k + 1], parts[..., 4:8])
    return point[..., :3].to(q.dtype)


def tcp_pose(q: torch.Tensor):
    """:func:`reach_rl_core.franka_model.tcp_pose` of ``q`` (..., 7) [rad]: TCP position (..., 3)
    m and rotation (..., 3, 3) in the base frame; on a GPU (outside an ONNX export) as
    :func:`tcp_position` computes the point, in float64 without 4x4 link matrices: the TCP
    frame's four homogeneous columns (its axes and its origin) go through the links as rows."""
    if q.device.type != "cuda" or torch.onnx.is_in_onnx_export():
        return franka_model.tcp_pose(q)
    q64 = q.double()
    cos, sin = q64.cos()[..., None, :], q64.sin()[..., None, :]  # (..., 1, 7)
    rows = constant(q64, _LINK_ROWS, False)
    frame = constant(q64, franka_model._TCP_FRAME_IN_LINK7.T, False)  # (4 columns, 4)
    for k in reversed(range(NUM_JOINTS)):
        parts = frame @ rows[k]  # (..., 4, 12)
        frame = torch.addcmul(torch.addcmul(parts[..., 8:], cos[..., k:k + 1], parts[..., :4]),
                              sin[..., k:k + 1], parts[..., 4:8])
    columns = frame[..., :3].transpose(-1, -2)  # (..., 3, 4): the axes, then the origin
    return columns[..., 3].to(q.dtype), columns[..., :3].to(q.dtype)
