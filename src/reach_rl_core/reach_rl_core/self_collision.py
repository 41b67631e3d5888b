"""Analytic model of the FR3's self-collision reflex: two capsules around each of links 0..7.

The robot stops with ``self_collision_avoidance_violation`` when two arm links at least
three apart in the chain come within :data:`REFLEX_DISTANCE` of each other and keep
closing. This module gives the training task (torch) and the safety filter (numpy) a
cheap, conservative estimate of that separation.

Model
-----
Each link ``i`` (0 = base .. 7) carries two capsules (segment + radius) fixed in its
modified-DH frame, which is also the frame of MuJoCo's ``fr3_link<i>`` body. They are
fitted (``bench/self_collision_fit.py --fit``) to *contain* the convex hull of the link's
collision mesh (``link<i>_coll.stl``, the ``fr3_link<i>_collision`` geom), and MuJoCo's
contact distance is the distance between those hulls; so the capsule separation is never
larger than the one the emulator judges (conservative by construction, checked on
random and folded samples by the bench script).

The Franka Hand is left out on purpose: franka-sim's reflex monitors only the
``fr3_link0..7_collision`` geoms (``SELF_COLLISION_LINKS`` in
``franka_sim/mujoco_franka_sim.py``), and the hand sits 26-68 mm off link5 in ordinary
poses, inside the reflex distance. The real robot's own model may include the
configured end effector; this one does not.

Units: rad, metres, base frame (``fr3_link0``). numpy in -> numpy out, torch in -> torch
out, as in :mod:`reach_rl_core.franka_model`.
"""
from typing import Tuple

import numpy as np

from reach_rl_core.braking import braking_speed
from reach_rl_core.franka_model import (NUM_JOINTS, _LINK_CONST, _LINK_COS, _LINK_SIN,
                                        array_namespace, indices, like)

#: Distance [m] (surface separation) at which the reflex engages: franka-sim's
#: ``SELF_COLLISION_MARGIN`` (``franka_sim/mujoco_franka_sim.py``), applied there as
#: MuJoCo's contact margin on the ``fr3_link<i>_collision`` geoms; it fires once a pair
#: inside it closes a further ``SELF_COLLISION_CLOSING_DISTANCE`` (1 mm). Franka does not
#: publish its own value.
REFLEX_DISTANCE = 0.05

#: Link pairs (i, j) the reflex monitors: links 0..7, j - i >= 3
#: (franka-sim's ``SELF_COLLISION_MIN_LINK_SEPARATION``). 15 pairs.
MONITORED_PAIRS = tuple((i, j) for i in range(8) for j in range(i + 3, 8))

# (link, segment start, segment end, radius): link frame, metres. Fitted by
# bench/self_collision_fit.py --fit to contain the link's collision hull (+0.5 mm).
CAPSULES = (
    (0, (-0.0818, -0.0003, 0.0181), (-0.0190, 0.0239, 0.0474), 0.0908),
    (0, (-0.0046, 0.0014, 0.0753), (-0.0104, -0.0101, 0.0278), 0.0910),
    (1, (0.0002, 0.0004, -0.1638), (0.0000, -0.0297, 0.0002), 0.0631),
    (1, (-0.0008, -0.0709, -0.0005), (0.0006, -0.0162, -0.1417), 0.0622),
    (2, (-0.0000, 0.0022, 0.0329), (0.0001, -0.1647, 0.0003), 0.0640),
    (2, (-0.0000, -0.0011, 0.0695), (0.0060, -0.1475, 0.0172), 0.0620),
    (3, (0.0780, 0.0304, -0.0048), (0.0057, -0.0008, -0.0798), 0.0683),
    (3, (0.0822, 0.0480, -0.0026), (-0.0003, -0.0002, -0.0901), 0.0657),
    (4, (-0.0004, 0.0028, 0.0315), (-0.0696, 0.0680, 0.0028), 0.0668),
    (4, (-0.0000, 0.0002, 0.0471), (-0.0823, 0.0911, -0.0000), 0.0662),
    (5, (-0.0001, 0.0018, -0.2330), (0.0001, 0.0516, -0.0031), 0.0624),
    (5, (0.0010, 0.0780, -0.0029), (0.0030, 0.0327, -0.2007), 0.0619),
    (6, (0.0016, 0.0015, 0.0059), (0.0884, -0.0181, -0.0015), 0.0562),
    (6, (0.0029, 0.0021, 0.0055), (0.0786, 0.0315, -0.0016), 0.0560),
    (7, (-0.0118, -0.0055, 0.0745), (0.0124, 0.0273, 0.0710), 0.0451),
    (7, (0.0046, -0.0097, 0.0722), (0.0397, 0.0397, 0.0847), 0.0432),
)

_CAP_LINK = np.array([c[0] for c in CAPSULES])
# Homogeneous segment ends as columns, (C, 4, 2).
_CAP_ENDS = np.array([[list(c[1]) + [1.0], list(c[2]) + [1.0]] for c in CAPSULES]).transpose(0, 2, 1)
_CAP_RADIUS = np.array([c[3] for c in CAPSULES])
_PAIRS = np.array([(m, n) for m in range(len(CAPSULES)) for n in range(len(CAPSULES))
                   if _CAP_LINK[n] - _CAP_LINK[m] >= 3])
_PAIR_A, _PAIR_B = _PAIRS[:, 0], _PAIRS[:, 1]
_PAIR_RADII = _CAP_RADIUS[_PAIR_A] + _CAP_RADIUS[_PAIR_B]


def link_frames(q):
    """Frames of links 0..7 [base frame, m], q (..., 7) rad -> (..., 8, 4, 4); link 0 is identity."""
    xp = array_namespace(q)
    angle = q[..., None, None]
    links = (xp.cos(angle) * like(q, _LINK_COS) + xp.sin(angle) * like(q, _LINK_SIN)
             + like(q, _LINK_CONST))  # (..., 7, 4, 4)
    frames = [like(q, np.eye(4)) + 0.0 * links[..., 0, :, :]]
    for k in range(NUM_JOINTS):
        frames.append(frames[-1] @ links[..., k, :, :])
    return xp.stack(frames, -3)


def capsule_segments(q):
    """Capsule segment ends in the base frame [m]: q (..., 7) -> (start, end), each (..., C, 3).

    Capsule ``c`` is :data:`CAPSULES` row ``c``; radii are the last column there.
    """
    return _segments(q, link_frames(q))


def _segments(q, frames):
    ends = frames[..., indices(q, _CAP_LINK), :3, :] @ like(q, _CAP_ENDS)  # (..., C, 3, 2)
    return ends[..., 0], ends[..., 1]


def _closest_points(p1, q1, p2, q2):
    """Closest points of segments p1-q1 and p2-q2 (..., 3), both of nonzero length.

    Ericson's clamped solution, written branch-free: s from the unconstrained optimum,
    t for that s, then s again for the clamped t (exact also for parallel segments).
    """
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e, b = (d1 * d1).sum(-1), (d2 * d2).sum(-1), (d1 * d2).sum(-1)
    c, f = (d1 * r).sum(-1), (d2 * r).sum(-1)
    s = ((b * f - c * e) / (a * e - b * b).clip(1e-12)).clip(0.0, 1.0)
    t = ((b * s + f) / e).clip(0.0, 1.0)
    s = ((b * t - c) / a).clip(0.0, 1.0)
    return p1 + s[..., None] * d1, p2 + t[..., None] * d2


def _pair_geometry(q, frames):
    """Closest points on every monitored capsule pair (..., P, 3) x 2 and their separations (..., P)."""
    start, end = _segments(q, frames)
    pair_a, pair_b = indices(q, _PAIR_A), indices(q, _PAIR_B)
    on_a, on_b = _closest_points(start[..., pair_a, :], end[..., pair_a, :],
                                 start[..., pair_b, :], end[..., pair_b, :])
    gap = on_a - on_b
    return on_a, on_b, ((gap * gap).sum(-1) + 1e-18) ** 0.5 - like(q, _PAIR_RADII)


def link_separation(q):
    """Smallest surface separation [m] over :data:`MONITORED_PAIRS`, q (..., 7) rad -> (...,).

    Never larger than the separation of the collision hulls MuJoCo reports (negative when
    the capsules overlap). numpy or torch (differentiable).
    """
    return array_namespace(q).amin(_pair_geometry(q, link_frames(q))[2], -1)


def separation_and_gradient(q) -> Tuple[float, np.ndarray]:
    """Separation [m] and its gradient d separation / d q [m/rad], shape (7,), at q (7,) rad.

    numpy only. The gradient is that of the nearest capsule pair: the normal between its
    closest points times the difference of their velocities per joint (the closest-point
    parameters do not contribute at the optimum).
    """
    q = np.asarray(q, dtype=float)
    frames = link_frames(q)
    on_a, on_b, sep = _pair_geometry(q, frames)
    k = int(np.argmin(sep))
    normal = on_a[k] - on_b[k]
    normal /= np.linalg.norm(normal) + 1e-18
    axis, origin = frames[1:, :3, 2], frames[1:, :3, 3]  # joint m+1 turns about frame m+1's z
    joints = np.arange(1, NUM_JOINTS + 1)
    moves = joints <= _CAP_LINK[[_PAIR_A[k], _PAIR_B[k]], None]  # (2, 7)
    # d p / d q_m = z_m x (p - o_m); n . (z x v) = z . (v x n)
    lever = np.stack([on_a[k], on_b[k]])[:, None, :] - origin  # (2, 7, 3)
    rate = (axis * (lever[..., [1, 2, 0]] * normal[[2, 0, 1]]
                    - lever[..., [2, 0, 1]] * normal[[1, 2, 0]])).sum(-1) * moves
    return float(sep[k]), rate[0] - rate[1]


def limit_closing_velocity(goal, separation: float, gradient, stop_distance: float,
                           brake_accel: float, hold_time: float = 0.0) -> np.ndarray:
    """Joint-velocity goal [rad/s] (7,) whose separation rate obeys the braking curve.

    With ``g = gradient`` [m/rad] (from :func:`separation_and_gradient`), the separation
    changes at ``g @ goal`` [m/s]. That rate is kept >= ``-sqrt(2 * brake_accel *
    max(separation - stop_distance, 0))`` (``separation``, ``stop_distance`` in m,
    ``brake_accel`` in m/s^2 of separation), the law ``braking_velocity_bounds`` in
    :mod:`reach_rl_core.safety_filter` applies to joint limits, by the smallest change
    of ``goal``: adding a multiple of ``g``. Opening, slow or far-off goals come back
    unchanged, and so does any goal where ``g`` is ~0. numpy only.
    """
    goal = np.array(goal, dtype=float)
    gradient = np.asarray(gradient, dtype=float)
    norm2 = float(gradient @ gradient)
    if norm2 < 1e-12:
        return goal
    need = -braking_speed(separation - stop_distance, brake_accel, hold_time)
    shortfall = need - float(gradient @ goal)
    if shortfall <= 0.0:
        return goal
    return goal + shortfall * gradient / norm2
