"""Tests of the capsule model of the FR3 self-collision reflex (reach_rl_core.self_collision)."""
import numpy as np
import pytest

from reach_rl_core import franka_model as fm
from reach_rl_core import self_collision as sc

LOW, HIGH = np.array(fm.FR3.pos_min), np.array(fm.FR3.pos_max)
FRANKA_SIM_START = (0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785)
# franka-sim's provocation: joint 4 folded toward its lower limit, joint 5 twisted.
FOLDED = (0.0, 0.0, 0.0, -3.0, -1.5, 1.57, 0.785)

# Measured with bench/self_collision_fit.py (mujoco 3.2.7, franka-sim's FR3 model):
# smallest contact.dist over the monitored pairs [m], with the link geoms' margin at
# franka-sim's 0.05 m where it reports, else at 0.3 m (a lower bound there: libccd
# under-reports far distances with a wide margin).
MEASURED = (
    (fm.READY_POSE, 0.1440),
    (FRANKA_SIM_START, 0.2128),
    ((0.0, 0.0, 0.0, -2.8, -1.5, 1.57, 0.785), 0.0776),
    ((0.0, 0.0, 0.0, -3.0, 1.5, 1.57, 0.785), 0.0735),
    (FOLDED, 0.0320),  # margin 0.05
    ((2.0377, -0.1740, 0.5696, -2.9215, -0.6307, 2.2434, -2.1099), 0.0449),  # margin 0.05
    ((0.6864, 1.4170, 1.5994, -2.3912, -1.1217, 4.0146, -2.9841), 0.1343),
    ((-1.8646, 0.4015, -2.6458, -2.9390, 0.0836, 2.3965, 2.5163), 0.0751),
    ((-1.6429, -0.4688, -2.8790, -2.5317, -1.9395, 2.6030, 2.2941), 0.1230),
)


def random_q(n, seed=0):
    return np.random.default_rng(seed).uniform(LOW, HIGH, (n, 7))


def test_monitored_pairs_are_links_three_apart():
    assert len(sc.MONITORED_PAIRS) == 15
    assert all(j - i >= 3 and 0 <= i < j <= 7 for i, j in sc.MONITORED_PAIRS)
    assert sc.REFLEX_DISTANCE == 0.05


def test_link7_frame_carries_the_tcp():
    q = random_q(50)
    frames = sc.link_frames(q)
    tcp = frames[:, 7, :3, 3] + (fm.FLANGE_D + fm.TCP_OFFSET) * frames[:, 7, :3, 2]
    np.testing.assert_allclose(tcp, fm.tcp_position(q), atol=1e-12)
    np.testing.assert_allclose(frames[:, 0], np.broadcast_to(np.eye(4), (50, 4, 4)))


def test_link_frames_match_the_dh_reference():
    q = random_q(20, seed=1)
    frames = sc.link_frames(q)
    expected = np.broadcast_to(np.eye(4), (20, 4, 4))
    for k, (a, d, alpha) in enumerate(fm.DH_TABLE):
        expected = expected @ fm._dh_transform(np, a, d, alpha, q[:, k])
        np.testing.assert_allclose(frames[:, k + 1], expected, atol=1e-12)


def test_gradient_matches_finite_differences():
    step = 1e-6
    for q in random_q(30, seed=3):
        separation, gradient = sc.separation_and_gradient(q)
        assert separation == pytest.approx(float(sc.link_separation(q)), abs=1e-12)
        numeric = np.array([(sc.link_separation(q + step * e) - sc.link_separation(q - step * e)) / (2 * step)
                            for e in np.eye(7)])
        np.testing.assert_allclose(gradient, numeric, atol=1e-5)


@pytest.mark.parametrize("q, measured", MEASURED)
def test_model_is_not_above_mujoco(q, measured):
    assert sc.link_separation(np.array(q)) <= measured


def test_start_poses_clear_and_provocation_caught():
    # bench/self_collision_fit.py: model 0.1417 m (ready), 0.1976 m (franka-sim start).
    assert sc.link_separation(np.array(fm.READY_POSE)) > sc.REFLEX_DISTANCE + 0.09
    assert sc.link_separation(np.array(FRANKA_SIM_START)) > sc.REFLEX_DISTANCE + 0.14
    assert sc.link_separation(np.array(FOLDED)) < sc.REFLEX_DISTANCE


def test_limit_closing_velocity_obeys_the_braking_law():
    rng = np.random.default_rng(4)
    stop, brake = 0.06, 2.0
    for q in random_q(200, seed=5):
        separation, gradient = sc.separation_and_gradient(q)
        goal = rng.uniform(-2.0, 2.0, 7)
        out = sc.limit_closing_velocity(goal, separation, gradient, stop, brake)
        floor = -np.sqrt(2.0 * brake * max(separation - stop, 0.0))
        rate = gradient @ goal
        if rate >= floor:
            np.testing.assert_array_equal(out, goal)
        else:
            assert gradient @ out == pytest.approx(floor, abs=1e-9)
            # the correction runs along the gradient only
            correction = out - goal
            along = (correction @ gradient) / (gradient @ gradient) * gradient
            np.testing.assert_allclose(correction, along, atol=1e-9)
        assert gradient @ out >= floor - 1e-9


def test_limit_closing_velocity_edge_cases():
    goal = np.array([0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7])
    np.testing.assert_array_equal(sc.limit_closing_velocity(goal, 0.03, np.zeros(7), 0.06, 2.0), goal)
    gradient = np.array([0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0])
    opening = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(sc.limit_closing_velocity(opening, 0.03, gradient, 0.06, 2.0), opening)
    # inside the stop distance no closing at all: the rate is raised to 0
    assert gradient @ sc.limit_closing_velocity(-opening, 0.03, gradient, 0.06, 2.0) == pytest.approx(0.0)
    # far away a closing goal is left alone
    np.testing.assert_array_equal(sc.limit_closing_velocity(-opening, 0.5, gradient, 0.06, 2.0), -opening)
