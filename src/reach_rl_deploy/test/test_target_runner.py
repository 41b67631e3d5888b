"""reach-rl-targets' pure parts: target parsing, held-out draws from a box, the result line."""
import math

import numpy as np
import pytest

from reach_rl_core.franka_model import READY_POSE, tcp_position
from reach_rl_deploy import target_runner as tr


def test_parse_target_takes_three_finite_metres_and_says_what_is_wrong():
    assert tr.parse_target("0.45,0.2,-0.1") == (0.45, 0.2, -0.1)
    for bad in ("0.45,0.2", "a,b,c", "0.4,nan,0.3", "1,2,3,4"):
        with pytest.raises(ValueError, match="must be x,y,z in metres"):
            tr.parse_target(bad)


def test_random_targets_are_reproducible_and_inside_the_box():
    box = ((0.3, -0.35, 0.15), (0.6, 0.35, 0.6))
    targets = tr.random_targets(200, 12345, box)
    assert targets == tr.random_targets(200, 12345, box)
    assert targets != tr.random_targets(200, 1, box)
    points = np.array(targets)
    assert np.all(points >= box[0]) and np.all(points <= box[1])


def test_tcp_error_is_the_distance_from_the_forward_kinematics():
    tcp = tcp_position(np.array(READY_POSE))
    assert tr.tcp_error(READY_POSE, tcp) == pytest.approx(0.0, abs=1e-12)
    assert tr.tcp_error(READY_POSE, tcp + [0.0, 0.003, 0.004]) == pytest.approx(0.005)


def test_summary_counts_medians_never_and_the_closest_joint():
    limit = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.25, 0.4])
    line = tr.summary([0.002, 0.004, 0.03], [0.5, 0.7, math.nan], 0.01, limit, [])
    assert line.startswith("2/3 targets within 10 mm | median final error 4.0 mm")
    assert "median time to 1 cm 0.60 s" in line and "0.250 rad (joint 6)" in line
    assert line.endswith("reflexes: none")
    line = tr.summary([0.03], [math.nan], 0.01, limit, ["reflex: joint_position_limits"])
    assert "median time to 1 cm never" in line and line.endswith("joint_position_limits")
