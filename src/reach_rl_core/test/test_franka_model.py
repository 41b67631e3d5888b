"""Kinematics and limits shared by training and deploy."""
import numpy as np
import pytest

from reach_rl_core import franka_model as fm


def test_ready_pose_tcp_matches_franka():
    # Franka's documented end-effector position in the ready pose with the hand's TCP.
    tcp = fm.tcp_position(np.array(fm.READY_POSE))
    np.testing.assert_allclose(tcp, [0.30689, 0.0, 0.48688], atol=1e-4)


def test_zero_pose_tcp_is_straight_up_with_link_offsets():
    # q = 0: arm points up; x = a4 + a5 (+0.0825 - 0.0825) + a7 (0.088), z = 0.333+0.316+0.384-0.107-0.1034
    tcp = fm.tcp_position(np.zeros(7))
    np.testing.assert_allclose(tcp, [0.088, 0.0, 0.333 + 0.316 + 0.384 - 0.107 - 0.1034], atol=1e-9)


def test_fr3_velocity_bounds_vanish_at_position_limits_and_are_full_in_the_middle():
    lower, upper = fm.velocity_bounds(fm.FR3, np.array(fm.FR3.pos_max))
    assert np.all(upper < 0.01)  # cannot move further out at the upper limit
    assert np.all(lower < -1.0)  # but can move back
    lower, upper = fm.velocity_bounds(fm.FR3, np.array(fm.FR3.pos_min))
    assert np.all(lower > -0.01) and np.all(upper > 1.0)
    middle = (np.array(fm.FR3.pos_min) + np.array(fm.FR3.pos_max)) / 2
    lower, upper = fm.velocity_bounds(fm.FR3, middle)
    np.testing.assert_allclose(upper, fm.FR3.vel_max)
    np.testing.assert_allclose(lower, -np.array(fm.FR3.vel_max))


def test_panda_velocity_bounds_are_constant():
    q = np.array(fm.PANDA.pos_max)
    lower, upper = fm.velocity_bounds(fm.PANDA, q)
    np.testing.assert_allclose(upper, fm.PANDA.vel_max)
    np.testing.assert_allclose(lower, -np.array(fm.PANDA.vel_max))


def test_unknown_robot_and_joint_names():
    assert fm.joint_names("fr3")[0] == "fr3_joint1"
    assert fm.joint_names("panda", "arm_j")[6] == "arm_j7"
    with pytest.raises(ValueError, match="unknown robot"):
        fm.joint_limits("ur5")


def test_tcp_position_matches_the_chain_of_dh_link_transforms():
    """The link-by-link point transport equals the reference chain of 4x4 modified-DH transforms."""
    q = np.random.default_rng(0).uniform(-3.0, 3.0, (500, 7))
    transform = None
    for i, (a, d, alpha) in enumerate(fm.DH_TABLE):
        link = fm._dh_transform(np, a, d, alpha, q[..., i])
        transform = link if transform is None else transform @ link
    reference = transform[..., :3, 3] + (fm.FLANGE_D + fm.TCP_OFFSET) * transform[..., :3, 2]
    np.testing.assert_allclose(fm.tcp_position(q), reference, atol=1e-12)


def test_limit_distance_is_the_nearer_limit_per_joint():
    limits = fm.FR3
    q = np.array([fm.READY_POSE, np.asarray(limits.pos_max) - 0.1])
    d = fm.limit_distance(q, limits.pos_min, limits.pos_max)
    np.testing.assert_allclose(d[1], 0.1)  # 0.1 rad below every upper limit
    np.testing.assert_allclose(d[0], np.minimum(q[0] - np.asarray(limits.pos_min),
                                                np.asarray(limits.pos_max) - q[0]))
