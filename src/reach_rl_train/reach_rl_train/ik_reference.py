"""Inverse kinematics for pose targets: joint positions [rad] that put the TCP on the target pose.

Two users: the reward's posture term pulls toward a reference posture that takes one step here
per policy step (:class:`reach_rl_train.reach_task.ReachTask`), and the policy's encoder observes
where a few steps from the arm's joints lead (``ObservationEncoder.inverse_kinematics``, inside
the exported policy file).

Why: a pose target fixes six of the arm's seven degrees of freedom, and the seventh (the elbow's
swivel) decides which yaws joint 7 can still give. Pulled toward a fixed home posture, policies
turn joint 7 into its limit and stop short of yaws that need the elbow elsewhere (docs/training.md).
The reference is what inverse kinematics would choose: it starts from the arm's joints when the
target appears, with joint 7 turned the way its range allows (:func:`joint7_turn`), and takes one
damped-least-squares step toward the target pose per policy step, inside the joint limits less a
margin, so joints 1 to 6 take over the yaw joint 7 cannot give. Batched, fixed shapes, no host
waits: it runs inside the rollout's CUDA graph, and exports to ONNX.
"""
from typing import Tuple

import torch

from reach_rl_core import franka_model
from reach_rl_core.franka_model import NUM_JOINTS
from reach_rl_train import torch_arrays
from reach_rl_train.pose_target import joint7_turn, sin_axis

DAMPING = 0.05  # damped least squares: (J J^T + DAMPING^2 I) u = e
MAX_STEP = 0.2  # rad per joint and refinement step
_TCP_FRAME = franka_model._TCP_FRAME_IN_LINK7  # the TCP frame in joint 7's frame


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a x b over the last axis (3); elementwise, one ONNX node per term."""
    return torch.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                        a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                        a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)


def pose_and_jacobian(q: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The TCP's position (..., 3) m and rotation (..., 3, 3) in the base frame at joint positions
    ``q`` (..., 7) rad, and the geometric Jacobian (..., 6, 7): the TCP's linear and angular
    velocity (base frame) per joint velocity. Joint k turns about the z axis of its frame
    (modified DH), so column k is ``(z_k x (p - o_k), z_k)``. On a GPU in float64, as
    :func:`reach_rl_train.torch_arrays.tcp_pose` (no TF32 products)."""
    exact = q.double() if q.device.type == "cuda" and not torch.onnx.is_in_onnx_export() else q
    links = franka_model.link_transforms(exact)  # (..., 7, 4, 4)
    frame = links[..., 0, :, :]
    frames = [frame]
    for k in range(1, NUM_JOINTS):
        frame = frame @ links[..., k, :, :]
        frames.append(frame)
    tcp = frame @ torch_arrays.constant(exact, _TCP_FRAME, False)
    position, rotation = tcp[..., :3, 3], tcp[..., :3, :3]
    axes = torch.stack([f[..., :3, 2] for f in frames], -2)  # (..., 7, 3)
    origins = torch.stack([f[..., :3, 3] for f in frames], -2)
    linear = _cross(axes, position.unsqueeze(-2) - origins)
    jacobian = torch.cat([linear, axes], -1).transpose(-1, -2)
    return position.to(q.dtype), rotation.to(q.dtype), jacobian.to(q.dtype)


def solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x of a x = b for symmetric positive definite ``a`` (..., n, n), ``b`` (..., n):
    Gauss-Jordan elimination on [a | b] without pivoting (an SPD matrix's pivots are positive),
    one column at a time over the whole batch: five tensor operations a column, where
    elementwise Cholesky took one per matrix entry and product (for n = 6, 32 operations, each
    a GPU kernel and an ONNX node, instead of about 200); no solver call that checks on the
    host, so it can be graph-captured and exported to ONNX."""
    n = a.shape[-1]
    m = torch.cat([a, b.unsqueeze(-1)], -1)  # (..., n, n + 1)
    eye = torch.eye(n, dtype=a.dtype, device=a.device)
    for j in range(n):
        pivot_row = m[..., j:j + 1, :] / m[..., j:j + 1, j:j + 1].clamp(min=1e-12)
        # every row less its column-j multiple of the pivot row; row j becomes the pivot row
        m = m - (m[..., :, j:j + 1] - eye[:, j:j + 1]) * pivot_row
    return m[..., n]


def refine(q: torch.Tensor, target_pos: torch.Tensor, target_rot: torch.Tensor,
           low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """One damped-least-squares step of joint positions ``q`` (..., 7) toward the target pose,
    each joint kept in [``low``, ``high``] (7) rad. A joint at a bound that the error would push
    beyond sits the step out (its Jacobian column dropped), so the others take over its share:
    without that, joint 7 held at its bound kept taking the step the yaw asked of it, and 4 % of
    poses out of joint 7's range were still off after 60 steps (1 % with)."""
    position, rotation, j = pose_and_jacobian(q)
    error = torch.cat([target_pos - position, sin_axis(target_rot @ rotation.transpose(-1, -2))],
                      -1)  # position [m] and rotation (sin(angle) * axis), base frame
    push = (j.transpose(-1, -2) @ error.unsqueeze(-1)).squeeze(-1)  # the error's gradient
    blocked = ((q >= high) & (push > 0)) | ((q <= low) & (push < 0))
    j = j * (~blocked).to(j.dtype).unsqueeze(-2)
    eye = torch.eye(6, device=q.device, dtype=q.dtype)
    u = solve_spd(j @ j.transpose(-1, -2) + DAMPING ** 2 * eye, error)
    step = (j.transpose(-1, -2) @ u.unsqueeze(-1)).squeeze(-1).clamp(-MAX_STEP, MAX_STEP)
    return torch.maximum(torch.minimum(q + step, high), low)


def turned(q: torch.Tensor, turn: torch.Tensor, joint7_range: Tuple[float, float]
           ) -> torch.Tensor:
    """The joints ``q`` (..., 7) with joint 7 turned by ``turn`` (...) rad
    (:func:`joint7_turn`'s way), clamped to ``joint7_range``."""
    q7 = (q[..., 6] + turn).clamp(*joint7_range)
    return torch.cat([q[..., :6], q7.unsqueeze(-1)], -1)


def start(q: torch.Tensor, target_rot: torch.Tensor, joint7_range: Tuple[float, float]
          ) -> torch.Tensor:
    """Where the reference starts for a new target: the joints ``q`` (..., 7) as they are, joint
    7 turned toward the target's yaw the way its range allows, and clamped to that range."""
    _, rotation = torch_arrays.tcp_pose(q)
    _, turn = joint7_turn(rotation, target_rot, q[..., 6], *joint7_range)
    return turned(q, turn, joint7_range)
