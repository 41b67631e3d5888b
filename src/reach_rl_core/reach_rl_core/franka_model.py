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
  is the flange plus 0.1034 m along the flange z axis (Franka Hand's TCP). Its orientation
  is franka_description's ``<arm>_hand_tcp``: the flange ``<arm>_link8`` (joint 7's frame
  moved 0.107 m along its z) turned by -pi/4 about z (``<arm>_hand_joint``).

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
HAND_YAW = -np.pi / 4  # rad, the hand (and its TCP frame) about the flange z axis


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


# Array libraries other than numpy that the shared math (this module, the safety filter,
# self-collision, actuator lag) may run on, registered by their users: training registers torch
# tensors (reach_rl_train/torch_arrays.py). This package never imports such a library.
_ARRAY_TYPES = []  # type: list  # (array type, namespace module, constant maker)


def register_array_type(array_type, namespace, constant) -> None:
    """Let the shared math run on ``array_type`` arrays. ``namespace``: their numpy-like module;
    ``constant(q, values, index)``: ``values`` as an array like ``q`` (q's dtype and device;
    integer indices when ``index``)."""
    _ARRAY_TYPES.append((array_type, namespace, constant))


def _registered(x):
    for entry in _ARRAY_TYPES:
        if isinstance(x, entry[0]):
            return entry
    raise TypeError("%s is neither a numpy array nor a registered array type (torch tensors "
                    "are registered by importing reach_rl_train)" % type(x).__name__)


def array_namespace(x):
    """numpy for numpy arrays, the registered library for other arrays."""
    if isinstance(x, np.ndarray):
        return np
    return _registered(x)[1]


def limit_distance(q, pos_min, pos_max):
    """Distance [rad] of each joint of ``q`` (..., 7) [rad] to the nearer of its position limits
    ``pos_min``/``pos_max`` [rad]. numpy in -> numpy out, tensor in -> tensor out."""
    return array_namespace(q).minimum(q - like(q, pos_min), like(q, pos_max) - q)


def like(q, values):
    """``values`` as an array of q's kind and dtype (and device), broadcastable against q.
    Don't write into what it returns (array libraries may hand out cached constants)."""
    if isinstance(q, np.ndarray):
        return np.asarray(values, dtype=q.dtype)
    return _registered(q)[2](q, values, False)


def indices(q, values):
    """Integer ``values`` as an index into arrays of q's kind."""
    if isinstance(q, np.ndarray):
        return np.asarray(values)
    return _registered(q)[2](q, values, True)


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
# The TCP frame (fr3_hand_tcp) as a homogeneous 4x4 transform in the frame of joint 7: turned by
# HAND_YAW about its z axis and moved along it, past the flange; its last column is the TCP point.
_TCP_FRAME_IN_LINK7 = np.array([
    [np.cos(HAND_YAW), -np.sin(HAND_YAW), 0.0, 0.0],
    [np.sin(HAND_YAW), np.cos(HAND_YAW), 0.0, 0.0],
    [0.0, 0.0, 1.0, FLANGE_D + TCP_OFFSET],
    [0.0, 0.0, 0.0, 1.0],
])
_TCP_IN_LINK7 = _TCP_FRAME_IN_LINK7[:, 3:]  # (4, 1)


def link_transforms(q):
    """Every link's transform ``cos(q) A + sin(q) B + C`` (:func:`_link_matrices`) at joint
    positions ``q`` [rad], shape (..., 7) -> (..., 7, 4, 4); numpy or torch."""
    xp = array_namespace(q)
    angle = q[..., None, None]  # (..., 7, 1, 1)
    return (xp.cos(angle) * like(q, _LINK_COS) + xp.sin(angle) * like(q, _LINK_SIN)
            + like(q, _LINK_CONST))


def _to_base(q, columns):
    """Homogeneous ``columns`` (4, k) given in joint 7's frame, in the base frame: (..., 1, 4, k).

    Every link transform is built at once as ``cos(q) A + sin(q) B + C``
    (:func:`_link_matrices`), and the columns are carried to the base through them, one matrix
    product per link: the exported ONNX graph has a few nodes per arm rather than per joint,
    which is what a 1 kHz inference call pays for.
    """
    xp = array_namespace(q)
    links = link_transforms(q)
    carried = like(q, columns)
    # One (..., 1, 4, 4) matrix per link (numpy splits into n parts, torch into parts of size n).
    per_link = np.split(links, NUM_JOINTS, -3) if xp is np else links.split(1, -3)
    for link in reversed(per_link):
        carried = link @ carried
    return carried


def tcp_position(q):
    """TCP position [m] in the base frame for joint positions ``q`` [rad], shape (..., 7) -> (..., 3).

    Same for FR3 and Panda. Works on numpy arrays and torch tensors. Carries the TCP point
    alone to the base (:func:`_to_base`), a matrix-vector product per link.
    :func:`_dh_transform` is the reference it is tested against.
    """
    return _to_base(q, _TCP_IN_LINK7)[..., 0, :3, 0]


def tcp_pose(q):
    """TCP pose in the base frame ``<arm>_link0`` for joint positions ``q`` [rad], shape (..., 7).

    Returns ``(position, rotation)``: position [m], shape (..., 3), the same point as
    :func:`tcp_position`; rotation, shape (..., 3, 3), whose columns are the x, y, z axes of
    franka_description's ``<arm>_hand_tcp`` frame (the flange ``<arm>_link8`` turned by
    ``HAND_YAW`` = -pi/4 about its z) in the base frame. Its z axis is the hand's approach
    direction: at ``READY_POSE`` it points down, (0, 0, -1). Same for FR3 and Panda; works on
    numpy arrays and torch tensors (a 4x4 matrix product per link, where tcp_position has a
    matrix-vector one).
    """
    frame = _to_base(q, _TCP_FRAME_IN_LINK7)[..., 0, :3, :]  # (..., 3, 4)
    return frame[..., 3], frame[..., :3]
