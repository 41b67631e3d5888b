"""A reference posture for pose targets (training only): joint positions [rad] that put the TCP
on the target pose, which the reward's posture term pulls toward.

Why: a pose target fixes six of the arm's seven degrees of freedom, and the seventh (the elbow's
swivel) decides which yaws joint 7 can still give. Pulled toward a fixed home posture, policies
turn joint 7 into its limit and stop short of yaws that need the elbow elsewhere (docs/training.md).
The reference is what inverse kinematics would choose: it starts from the arm's joints when the
target appears, with joint 7 turned the way its range allows (:func:`joint7_turn`), and takes one
damped-least-squares step toward the target pose per policy step, inside the joint limits less a
margin, so joints 1 to 6 take over the yaw joint 7 cannot give. Batched, fixed shapes, no host
waits: it runs inside the rollout's CUDA graph.
"""
from typing import Tuple

import torch

from reach_rl_core.franka_model import NUM_JOINTS
from reach_rl_train import torch_arrays
from reach_rl_train.pose_target import joint7_turn, sin_axis

FD_STEP = 1e-3  # rad, finite-difference step of the Jacobian
DAMPING = 0.05  # damped least squares: (J J^T + DAMPING^2 I) u = e
MAX_STEP = 0.2  # rad per joint and refinement step


def pose_and_jacobian(q: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The TCP's position (..., 3) m and rotation (..., 3, 3) in the base frame at joint positions
    ``q`` (..., 7), and the Jacobian (..., 6, 7): the TCP's linear and angular velocity (base frame)
    per joint velocity, by forward differences; one batched :func:`torch_arrays.tcp_pose` over q
    and q moved by FD_STEP along each joint."""
    moved = q.unsqueeze(-2) + FD_STEP * torch.eye(NUM_JOINTS, device=q.device, dtype=q.dtype)
    positions, rotations = torch_arrays.tcp_pose(torch.cat([q.unsqueeze(-2), moved], -2))
    position, rotation = positions[..., 0, :], rotations[..., 0, :, :]
    linear = (positions[..., 1:, :] - position.unsqueeze(-2)) / FD_STEP
    turned = rotations[..., 1:, :, :] @ rotation.unsqueeze(-3).transpose(-1, -2)
    angular = sin_axis(turned) / FD_STEP
    return position, rotation, torch.cat([linear, angular], -1).transpose(-1, -2)


def solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x of a x = b for symmetric positive definite ``a`` (..., n, n), ``b`` (..., n): Cholesky
    by hand, elementwise (no solver call that checks on the host, so it can be graph-captured)."""
    n = a.shape[-1]
    low = [[None] * n for _ in range(n)]  # type: list
    for j in range(n):
        diagonal = a[..., j, j] - sum(low[j][k] * low[j][k] for k in range(j))
        low[j][j] = diagonal.clamp(min=1e-12).sqrt()
        for i in range(j + 1, n):
            low[i][j] = (a[..., i, j] - sum(low[i][k] * low[j][k] for k in range(j))) / low[j][j]
    y = [None] * n  # type: list
    for i in range(n):
        y[i] = (b[..., i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i]
    x = [None] * n  # type: list
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return torch.stack(x, -1)


def refine(q: torch.Tensor, target_pos: torch.Tensor, target_rot: torch.Tensor,
           low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """One damped-least-squares step of joint positions ``q`` (..., 7) toward the target pose,
    each joint kept in [``low``, ``high``] (7) rad."""
    position, rotation, j = pose_and_jacobian(q)
    error = torch.cat([target_pos - position, sin_axis(target_rot @ rotation.transpose(-1, -2))],
                      -1)  # position [m] and rotation (sin(angle) * axis), base frame
    eye = torch.eye(6, device=q.device, dtype=q.dtype)
    u = solve_spd(j @ j.transpose(-1, -2) + DAMPING ** 2 * eye, error)
    step = (j.transpose(-1, -2) @ u.unsqueeze(-1)).squeeze(-1).clamp(-MAX_STEP, MAX_STEP)
    return torch.maximum(torch.minimum(q + step, high), low)


def start(q: torch.Tensor, target_rot: torch.Tensor, joint7_range: Tuple[float, float]
          ) -> torch.Tensor:
    """Where the reference starts for a new target: the joints ``q`` (..., 7) as they are, joint
    7 turned toward the target's yaw the way its range allows, and clamped to that range."""
    _, rotation = torch_arrays.tcp_pose(q)
    _, turn = joint7_turn(rotation, target_rot, q[..., 6], *joint7_range)
    q7 = (q[..., 6] + turn).clamp(*joint7_range)
    return torch.cat([q[..., :6], q7.unsqueeze(-1)], -1)
