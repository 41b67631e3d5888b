"""Franka FR3 and Panda: joint names, limits and forward kinematics.

Everything here is plain data and pure functions, shared by the training side (torch
tensors) and the deploy side (numpy arrays): the kinematics and velocity-bound
functions accept either and return the same kind.

Sources
-------
* Joint position / velocity / acceleration / jerk limits: Franka's "Robot and interface
  specifications", sections "Limits for Panda" and "Limits for Franka Research 3"
  (frankaemika.github.io/docs/control_parameters.html).
* FR3 position-dependent velocity bounds: same page, and libfranka's
  ``franka::computeUpperLimitsJointVelocity`` / ``computeLowerLimitsJointVelocity``
  (include/franka/rate_limiting.h, libfranka >= 0.10).
* Kinematics: the modified (Craig) Denavit-Hartenberg table of the same page; the TCP
  is the flange plus 0.1034 m along the flange z axis (Franka Hand's TCP).

Units: rad, rad/s, rad/s^2, rad/s^3, metres; positions are in the arm's base frame
(``<arm>_link0``).
"""
from dataclasses import dataclass
from typing import Tuple

import numpy as np

NUM_JOINTS = 7
ROBOTS = ("fr3", "panda")

# "ready" pose of franka_ros2 / Franka Desk, rad.
READY_POSE = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)

# Modified DH rows (a [m], d [m], alpha [rad]) for joints 1..7, then the flange.
DH_TABLE = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
)
FLANGE_D = 0.107
TCP_OFFSET = 0.1034  # metres along the flange z axis


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits, each a tuple of 7 floats in joint order."""

    robot: str
    pos_min: Tuple[float, ...]  # rad
    pos_max: Tuple[float, ...]  # rad
    vel_max: Tuple[float, ...]  # rad/s, symmetric
    acc_max: Tuple[float, ...]  # rad/s^2, symmetric
    jerk_max: Tuple[float, ...]  # rad/s^3, symmetric
    position_dependent_velocity: bool  # FR3: the velocity bound shrinks near position limits


PANDA = JointLimits(
    robot="panda",
    pos_min=(-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973),
    pos_max=(2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973),
    vel_max=(2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100),
    acc_max=(15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
    jerk_max=(7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0),
    position_dependent_velocity=False,
)

FR3 = JointLimits(
    robot="fr3",
    pos_min=(-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159),
    pos_max=(2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159),
    vel_max=(2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26),
    acc_max=(10.0,) * 7,
    jerk_max=(5000.0,) * 7,
    position_dependent_velocity=True,
)

# FR3 velocity bound near the position limits: v(q) = -off + sqrt(gain * (edge -/+ q)),
# clipped to [0, vel_max]. Columns: offset [rad/s], gain [rad/s^2], upper edge [rad],
# lower edge [rad]. From Franka's FR3 limit table / libfranka rate_limiting.h.
_FR3_VEL_BOUND = (
    (0.30, 12.0, 2.75010, -2.75010),
    (0.20, 5.17, 1.79180, -1.79180),
    (0.20, 7.00, 2.90650, -2.90650),
    (0.30, 8.00, -0.1458, -3.04810),
    (0.35, 34.0, 2.81010, -2.81010),
    (0.35, 11.0, 4.52050, 0.54092),
    (0.35, 34.0, 3.01960, -3.01960),
)

_LIMITS = {"fr3": FR3, "panda": PANDA}


def joint_limits(robot: str) -> JointLimits:
    """Limits of ``robot`` ('fr3' or 'panda'); ValueError for anything else."""
    try:
        return _LIMITS[robot]
    except KeyError:
        raise ValueError("unknown robot %r: expected one of %s" % (robot, ", ".join(ROBOTS))) from None


def joint_names(robot: str, prefix: str = "") -> Tuple[str, ...]:
    """Joint names as franka_ros2 publishes them, e.g. ``fr3_joint1`` .. ``fr3_joint7``.

    ``prefix`` defaults to ``<robot>_joint``.
    """
    joint_limits(robot)
    prefix = prefix or robot + "_joint"
    return tuple("%s%d" % (prefix, i + 1) for i in range(NUM_JOINTS))


def array_namespace(x):
    """numpy for arrays, torch for tensors (torch is imported only when given a tensor)."""
    if isinstance(x, np.ndarray):
        return np
    import torch  # the deploy side never passes tensors, so never imports torch

    return torch


def limit_distance(q, pos_min, pos_max):
    """Distance [rad] of each joint of ``q`` (..., 7) [rad] to the nearer of its position limits
    ``pos_min``/``pos_max`` [rad]. numpy in -> numpy out, torch in -> torch out."""
    return array_namespace(q).minimum(q - like(q, pos_min), like(q, pos_max) - q)


_TENSOR_CONSTANTS = {}  # type: dict  # (device, dtype, host dtype, shape, bytes) -> tensor


def like(q, values):
    """``values`` as an array of q's kind, dtype (and device), broadcastable against q.

    Host values for a torch tensor become one tensor per device and dtype, made at their first
    use and reused after: no copy to the GPU at every call (inside a CUDA graph capture such a
    copy is an error). Don't write into what it returns."""
    if isinstance(q, np.ndarray):
        return np.asarray(values, dtype=q.dtype)
    if hasattr(values, "to"):  # already a tensor
        return values.to(device=q.device, dtype=q.dtype)
    return _constant(q, values, q.dtype)


def indices(q, values):
    """Integer ``values`` as an index into arrays of q's kind: a numpy array, or a long tensor
    on q's device made once (as :func:`like` makes its constants; indexing a GPU tensor with
    host integers copies them to the GPU at every call)."""
    if isinstance(q, np.ndarray):
        return np.asarray(values)
    import torch  # loaded already: q is a tensor

    return _constant(q, values, torch.long)


def _constant(q, values, dtype):
    """``values`` as a tensor of ``dtype`` on q's device, made at its first use and reused."""
    import torch  # loaded already: q is a tensor

    if torch.jit.is_tracing():  # exporting: the graph keeps its own constants
        return q.new_tensor(values, dtype=dtype)
    host = np.asarray(values)
    key = (q.device, dtype, host.dtype, host.shape, host.tobytes())
    tensor = _TENSOR_CONSTANTS.get(key)
    if tensor is None:
        if len(_TENSOR_CONSTANTS) >= 1024:  # bounded, should callers vary their values
            _TENSOR_CONSTANTS.clear()
        tensor = _TENSOR_CONSTANTS[key] = q.new_tensor(values, dtype=dtype)
    return tensor


def velocity_bounds(limits: JointLimits, q):
    """Lower and upper joint velocity bounds [rad/s] at joint position ``q`` [rad], shape (..., 7).

    For the FR3 the bounds shrink to zero at the position limits (position-dependent
    limits); for the Panda they are the constant ``vel_max``. Works on numpy arrays
    and torch tensors.
    """
    vmax = like(q, limits.vel_max) + 0.0 * q
    if not limits.position_dependent_velocity:
        return -vmax, vmax
    off, gain, upper_edge, lower_edge = (like(q, column) for column in zip(*_FR3_VEL_BOUND))
    upper = (-off + (gain * (upper_edge - q)).clip(0.0) ** 0.5).clip(0.0)
    lower = (off - (gain * (q - lower_edge)).clip(0.0) ** 0.5).clip(None, 0.0)
    xp = array_namespace(q)
    return xp.maximum(lower, -vmax), xp.minimum(upper, vmax)


def _dh_transform(xp, a: float, d: float, alpha: float, theta):
    """Modified-DH link transform, shape (..., 4, 4): RotX(alpha) TransX(a) RotZ(theta) TransZ(d)."""
    ct, st = xp.cos(theta), xp.sin(theta)
    ca, sa = float(np.cos(alpha)), float(np.sin(alpha))
    zero, one = xp.zeros_like(theta), xp.ones_like(theta)
    rows = (
        (ct, -st, zero, zero + a),
        (st * ca, ct * ca, zero - sa, zero - d * sa),
        (st * sa, ct * sa, zero + ca, zero + d * ca),
        (zero, zero, zero, one),
    )
    return xp.stack([xp.stack(r, -1) for r in rows], -2)


def _link_matrices():
    """Constant 4x4 parts of the modified-DH link transforms, linear in cos and sin of the joint.

    ``RotX(alpha) TransX(a) RotZ(theta) TransZ(d) = cos(theta) A + sin(theta) B + C``: the
    rotation is RotX(alpha) times the cos and sin parts of RotZ(theta), and the translation
    ``(a, -sin(alpha) d, cos(alpha) d)`` does not depend on theta (TransZ(d) runs along the
    joint axis). Returns A, B, C, each of shape (7, 4, 4).
    """
    rot_cos = np.diag([1.0, 1.0, 0.0])
    rot_sin = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    axis = np.diag([0.0, 0.0, 1.0])
    a_part, b_part, c_part = np.zeros((3, NUM_JOINTS, 4, 4))
    for i, (a, d, alpha) in enumerate(DH_TABLE):
        ca, sa = np.cos(alpha), np.sin(alpha)
        rot_x = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
        a_part[i, :3, :3] = rot_x @ rot_cos
        b_part[i, :3, :3] = rot_x @ rot_sin
        c_part[i, :3, :3] = rot_x @ axis
        c_part[i, :3, 3] = (a, -sa * d, ca * d)
        c_part[i, 3, 3] = 1.0
    return a_part, b_part, c_part


_LINK_COS, _LINK_SIN, _LINK_CONST = _link_matrices()
# The TCP as a homogeneous column in the frame of joint 7: along its z axis, past the flange.
_TCP_IN_LINK7 = np.array([[0.0], [0.0], [FLANGE_D + TCP_OFFSET], [1.0]])


def tcp_position(q):
    """TCP position [m] in the base frame for joint positions ``q`` [rad], shape (..., 7) -> (..., 3).

    Same for FR3 and Panda. Works on numpy arrays and torch tensors. Every link transform
    is built at once as ``cos(q) A + sin(q) B + C`` (:func:`_link_matrices`), and the TCP
    point is carried to the base through them, one matrix-vector product per link: the
    exported ONNX graph has a few nodes per arm rather than per joint, which is what a
    1 kHz inference call pays for. :func:`_dh_transform` is the reference it is tested against.
    CUDA tensors take :func:`_tcp_position_by_rows` instead.
    """
    xp = array_namespace(q)
    if xp is not np and q.device.type == "cuda" and not xp.onnx.is_in_onnx_export():
        return _tcp_position_by_rows(q)
    angle = q[..., None, None]  # (..., 7, 1, 1)
    links = (xp.cos(angle) * like(q, _LINK_COS) + xp.sin(angle) * like(q, _LINK_SIN)
             + like(q, _LINK_CONST))  # (..., 7, 4, 4)
    point = like(q, _TCP_IN_LINK7)
    # One (..., 1, 4, 4) matrix per link (numpy splits into n parts, torch into parts of size n).
    per_link = np.split(links, NUM_JOINTS, -3) if xp is np else links.split(1, -3)
    for link in reversed(per_link):
        point = link @ point
    return point[..., 0, :3, 0]


# Per link k, (4, 12): a homogeneous row point p times it gives (A p, B p, C p) of the link's
# transform cos(q) A + sin(q) B + C (:func:`_link_matrices`).
_LINK_ROWS = np.concatenate([_LINK_COS, _LINK_SIN, _LINK_CONST], axis=1).transpose(0, 2, 1)


def _tcp_position_by_rows(q):
    """:func:`tcp_position` for torch tensors (..., 7) without the (..., 7, 4, 4) link matrices.

    The TCP point, a row, goes through link k as ``cos(q_k) A p + sin(q_k) B p + C p``, with
    (A p, B p, C p) one (..., 4) x (4, 12) matrix product. On a GPU this is a few small
    kernels per link, where building the link matrices and multiplying them with the point took
    ~0.65 ms of a 2.9 ms ReachTask.step at 262,144 arms (H200, eager). In float64: a float32
    product on a GPU may run on TF32 tensor cores (training asks for them, for its MLPs), whose
    10-bit mantissa would cost millimetres.
    """
    import torch  # loaded already: q is a tensor

    q64 = q.double()
    cos, sin = q64.cos(), q64.sin()
    rows = like(q64, _LINK_ROWS)
    point = like(q64, _TCP_IN_LINK7[:, 0])  # (4,)
    for k in reversed(range(NUM_JOINTS)):
        parts = point @ rows[k]  # (..., 12)
        point = torch.addcmul(torch.addcmul(parts[..., 8:], cos[..., k:k + 1], parts[..., :4]),
                              sin[..., k:k + 1], parts[..., 4:8])
    return point[..., :3].to(q.dtype)
