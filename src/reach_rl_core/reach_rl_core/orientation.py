"""Hand orientation targets: quaternions, rotation matrices and a continuous orientation error.

Shared by training (torch tensors) and deploy (numpy arrays) the way
:mod:`reach_rl_core.franka_model` is: every function takes either and returns the same kind.

Conventions
-----------
* Rotation matrices, shape (..., 3, 3), map a frame's coordinates into the base frame
  ``<arm>_link0``: their columns are the frame's x, y, z axes in the base frame, as the rotation
  of :func:`reach_rl_core.franka_model.tcp_pose` (the ``<arm>_hand_tcp`` frame).
* Quaternions, shape (..., 4), are (x, y, z, w), as geometry_msgs/Quaternion and Isaac Gym; q and
  -q are the same rotation.
* Angles in rad.

The orientation error the policy observes, :func:`orientation_error_features`, is the "6D"
representation of the target orientation in the current hand frame: the first two columns of
``R_current^T R_target``, less those of the identity. It is a linear function of the matrix, so it
is continuous everywhere (across an error of pi too, where a rotation vector jumps) and the same
for q and -q (where a quaternion's sign may flip); Euler angles have neither property.
"""
import numpy as np

from reach_rl_core.franka_model import array_namespace, like

# Success: the hand within this angle [rad] of the target orientation (and within 1 cm).
ORIENTATION_TOLERANCE = float(np.deg2rad(5.0))  # 0.0873 rad


def quaternion_norm_error(q):
    """| |q| - 1 | of quaternions ``q`` (..., 4): how far they are from unit quaternions
    (dimensionless, shape (...)). A check for inputs, e.g. targets from a topic."""
    xp = array_namespace(q)
    return abs(xp.sqrt((q * q).sum(-1)) - 1.0)


def quaternion_to_matrix(q):
    """Rotation matrices (..., 3, 3) of quaternions ``q`` (..., 4), (x, y, z, w).

    Scale-free: q, -q and any non-zero multiple of q give the same rotation (a non-unit q is
    normalised, in effect; check inputs with :func:`quaternion_norm_error`). All-zero q -> NaN.
    """
    xp = array_namespace(q)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    s = 2.0 / (q * q).sum(-1)
    rows = (
        (1.0 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)),
        (s * (x * y + z * w), 1.0 - s * (x * x + z * z), s * (y * z - x * w)),
        (s * (x * z - y * w), s * (y * z + x * w), 1.0 - s * (x * x + y * y)),
    )
    return xp.stack([xp.stack(r, -1) for r in rows], -2)


def matrix_to_quaternion(rotation):
    """Unit quaternions (..., 4), (x, y, z, w) with w >= 0, of rotation matrices (..., 3, 3).

    Shepperd's method without branches: 4 q q^T is linear in the matrix; its row with the
    largest diagonal entry, over the square root of that entry, is +-q, accurate at any angle.
    """
    xp = array_namespace(rotation)
    r = [[rotation[..., i, j] for j in range(3)] for i in range(3)]
    # Rows of 4 q q^T, in the order x, y, z, w.
    outer = (
        (1.0 + r[0][0] - r[1][1] - r[2][2], r[0][1] + r[1][0], r[0][2] + r[2][0], r[2][1] - r[1][2]),
        (r[0][1] + r[1][0], 1.0 - r[0][0] + r[1][1] - r[2][2], r[1][2] + r[2][1], r[0][2] - r[2][0]),
        (r[0][2] + r[2][0], r[1][2] + r[2][1], 1.0 - r[0][0] - r[1][1] + r[2][2], r[1][0] - r[0][1]),
        (r[2][1] - r[1][2], r[0][2] - r[2][0], r[1][0] - r[0][1], 1.0 + r[0][0] + r[1][1] + r[2][2]),
    )
    diagonal = [outer[i][i] for i in range(4)]
    largest = xp.maximum(xp.maximum(diagonal[0], diagonal[1]), xp.maximum(diagonal[2], diagonal[3]))
    quaternion = xp.stack(outer[3], -1)
    for i in (2, 1, 0):  # the first row with the largest diagonal entry wins
        quaternion = xp.where((diagonal[i] == largest)[..., None], xp.stack(outer[i], -1),
                              quaternion)
    quaternion = quaternion / (2.0 * xp.sqrt(largest)[..., None])
    return xp.where(quaternion[..., 3:] < 0.0, -quaternion, quaternion)


def _transpose(matrix):
    return matrix.swapaxes(-1, -2)


def orientation_error_features(current, target):
    """Continuous observation (..., 6) of the orientation error between the hand's rotation
    ``current`` and the target rotation ``target``, both (..., 3, 3) in the base frame.

    ``E = current^T target`` is the target's orientation in the current hand frame; the features
    are its first two columns (the target's x then y axis in hand coordinates) less (1, 0, 0) and
    (0, 1, 0): all zero when the hand is on target, each in [-2, 2]. The third column is their
    cross product, so nothing is lost; being linear in E, the features are continuous at every
    error (no jump at pi) and independent of the quaternion sign.
    """
    error = _transpose(current) @ target
    columns = _transpose(error[..., :, :2]) - like(error, np.eye(3)[:2])  # (..., 2, 3)
    return columns.reshape(tuple(columns.shape[:-2]) + (6,))


def orientation_error_angle(current, target):
    """Geodesic angle [rad], in [0, pi], of the rotation between ``current`` and ``target``
    (..., 3, 3): the angle of ``current^T target`` about its axis; shape (...).

    atan2(|sin|, cos) from the matrix's skew and trace parts: accurate near 0 and near pi, where
    an arccos of the trace loses half the digits. (Its gradient at exactly 0 is not finite.)
    """
    xp = array_namespace(current)
    e = _transpose(current) @ target
    cosine = e[..., 0, 0] + e[..., 1, 1] + e[..., 2, 2] - 1.0  # 2 cos(angle)
    skew = xp.stack((e[..., 2, 1] - e[..., 1, 2], e[..., 0, 2] - e[..., 2, 0],
                     e[..., 1, 0] - e[..., 0, 1]), -1)  # 2 sin(angle) axis
    return xp.arctan2(xp.sqrt((skew * skew).sum(-1)), cosine)


def _as_array(x):
    if isinstance(x, (int, float, np.generic, list, tuple)):
        return np.asarray(x, dtype=float)
    return x


def rotation_from_rpy(roll, pitch, yaw):
    """Rotation matrices (..., 3, 3) of roll, pitch, yaw [rad] (broadcast together), as ROS's
    tf2 ``Quaternion::setRPY``: fixed axes, about x by roll, then y by pitch, then z by yaw, i.e.
    ``Rz(yaw) Ry(pitch) Rx(roll)``. (0, pi, yaw) points the TCP z axis down. Python numbers are
    taken as numpy; arrays of another kind must all be of that kind.
    """
    roll, pitch, yaw = _as_array(roll), _as_array(pitch), _as_array(yaw)
    xp = array_namespace(roll)
    zero = 0.0 * (roll + pitch + yaw)  # the broadcast shape
    roll, pitch, yaw = roll + zero, pitch + zero, yaw + zero
    cr, sr, cp, sp, cy, sy = (xp.cos(roll), xp.sin(roll), xp.cos(pitch), xp.sin(pitch),
                              xp.cos(yaw), xp.sin(yaw))
    rows = (
        (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr),
        (sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr),
        (-sp, cp * sr, cp * cr),
    )
    return xp.stack([xp.stack(r, -1) for r in rows], -2)


def numpy_uniform(rng):
    """``uniform(shape, low, high)`` for :func:`sample_down_orientations` from a numpy Generator."""
    return lambda shape, low, high: rng.uniform(low, high, shape)


def sample_down_orientations(uniform, n, cone=0.0):
    """``n`` target rotations (n, 3, 3) of the ``<arm>_hand_tcp`` frame in the base frame.

    ``uniform(shape, low, high)`` draws uniform numbers as arrays of the kind wanted (numpy:
    :func:`numpy_uniform`; training passes its task's torch generator, so a CUDA graph of steps
    draws anew at each replay); shapes never depend on the numbers drawn. With ``cone`` = 0 the
    TCP z axis points straight down, -base z, with yaw (the hand's turn about that axis) uniform
    in [-pi, pi): roll 0, pitch pi, yaw as :func:`rotation_from_rpy`. With ``cone`` > 0 [rad]
    that rotation is then tilted so the z axis points uniformly over the spherical cap of
    half-angle ``cone`` around down. The draws and the rotations they give are
    :func:`draw_down_orientations` and :func:`down_orientations`.
    """
    return down_orientations(draw_down_orientations(uniform, n, cone), cone)


def draw_down_orientations(uniform, n, cone=0.0):
    """The uniform numbers behind :func:`sample_down_orientations`' ``n`` rotations, in the order
    it draws them: ``(yaw,)`` [rad], and for ``cone`` > 0 also the cosine of the tilt and the
    tilt's heading [rad], each (n,)."""
    if not 0.0 <= cone <= np.pi:
        raise ValueError("cone must be in [0, pi] rad, got %r" % (cone,))
    yaw = uniform((n,), -np.pi, np.pi)
    if cone == 0.0:
        return (yaw,)
    return yaw, uniform((n,), np.cos(cone), 1.0), uniform((n,), -np.pi, np.pi)


def down_orientations(draws, cone=0.0):
    """The rotations (n, 3, 3) of :func:`draw_down_orientations`' ``draws`` for ``cone``."""
    yaw = draws[0]
    xp = array_namespace(yaw)
    zero = 0.0 * yaw
    down = rotation_from_rpy(zero, zero + np.pi, yaw)
    if cone == 0.0:
        return down
    tilt = xp.arccos(xp.clip(draws[1], -1.0, 1.0))  # uniform over the cap's area
    heading = draws[2]
    # Rodrigues: turn by `tilt` about the horizontal axis that takes -z towards `heading`.
    ax, ay = xp.sin(heading), -xp.cos(heading)
    cross = xp.stack((xp.stack((zero, zero, ay), -1), xp.stack((zero, zero, -ax), -1),
                      xp.stack((-ay, ax, zero), -1)), -2)
    s, c = xp.sin(tilt)[:, None, None], xp.cos(tilt)[:, None, None]
    turn = like(cross, np.eye(3)) + s * cross + (1.0 - c) * (cross @ cross)
    return turn @ down
