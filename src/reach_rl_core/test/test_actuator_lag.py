"""The one actuator-lag model: exact over a step (its torch form: reach_rl_train's tests)."""
import math

import numpy as np

from reach_rl_core.actuator_lag import lag_step


def test_lag_closes_the_gap_exponentially_and_integrates_exactly():
    v, command, tau, dt = np.array([0.0, 1.0]), np.array([1.0, -1.0]), 0.03, 0.02
    velocity, displacement = lag_step(v, command, tau, dt)
    decay = math.exp(-dt / tau)
    np.testing.assert_allclose(velocity, command + (v - command) * decay)
    # The same step in 20000 small Euler steps.
    fine_v, fine_q = v.copy(), np.zeros(2)
    for _ in range(20000):
        fine_q += fine_v * dt / 20000
        fine_v += (command - fine_v) / tau * dt / 20000
    np.testing.assert_allclose(velocity, fine_v, atol=2e-5)
    np.testing.assert_allclose(displacement, fine_q, atol=1e-6)


def test_no_lag_is_ideal_tracking():
    velocity, displacement = lag_step(np.zeros(7), np.ones(7), 0.0, 0.001)
    assert np.array_equal(velocity, np.ones(7)) and np.array_equal(displacement, np.full(7, 0.001))
