"""TickPacer: ticks locked to joint states at the control rate, on the clock otherwise."""
import numpy as np

from reach_rl_deploy.tick_pacer import FALLBACK, MIN_GAP, TickPacer

PERIOD = 1e-3


def simulate(state_times, duration, work=50e-6, step=10e-6):
    """Run a pacer over ``duration`` s with joint states arriving at ``state_times``; each tick's
    message goes out ``work`` s after it starts. Returns the tick times and, per tick, whether
    the pacer was locked."""
    pacer = TickPacer(PERIOD, 0.0)
    states = list(state_times)
    ticks, locked = [], []
    now = 0.0
    while now < duration:
        while states and states[0] <= now:
            pacer.on_state(states.pop(0))
        if pacer.due(now):
            ticks.append(now)
            locked.append(pacer.locked)
            pacer.ticked(now, now + work)
        now += step
    return np.array(ticks), np.array(locked)


def test_without_joint_states_ticks_follow_the_clock():
    ticks, locked = simulate([], 0.5)
    periods = np.diff(ticks)
    assert not locked.any()
    assert abs(np.median(periods) - PERIOD) < 20e-6
    assert len(ticks) == 500 or len(ticks) == 501


def test_states_at_the_control_rate_lock_the_ticks_to_them():
    rng = np.random.default_rng(0)
    states = np.arange(1, 500) * PERIOD + 0.37e-3 + rng.uniform(0, 0.2e-3, 499)  # jittered 1 kHz
    ticks, locked = simulate(states, 0.5)
    assert locked[20:].all()
    # After locking, every state is answered within one step of the simulation.
    answered = ticks[np.searchsorted(ticks, states[20:])]
    assert np.all(answered - states[20:] <= 10e-6 + 1e-12)
    assert abs(len(ticks) - 500) <= 3


def test_locked_ticks_fall_back_to_the_clock_when_states_stop_and_bursts_are_spaced():
    states = list(np.arange(1, 200) * PERIOD)
    states += [0.3, 0.30001, 0.30002]  # a burst after a 100 ms stall
    ticks, _ = simulate(states, 0.4)
    gaps = np.diff(ticks)
    assert gaps.min() >= MIN_GAP * PERIOD + 50e-6 - 1e-9  # counted from the message going out
    stalled = ticks[(ticks > 0.21) & (ticks < 0.29)]
    # While no state arrives, the stream keeps going at the control rate (the first tick
    # waits FALLBACK periods for a late state).
    assert abs(np.median(np.diff(stalled)) - PERIOD) < 20e-6
    last_on_state = np.searchsorted(ticks, 0.199)  # the tick answering the last state
    assert abs(ticks[last_on_state + 1] - (ticks[last_on_state] + FALLBACK * PERIOD)) < 20e-6
    # The burst gives at most two ticks within one period.
    assert np.sum((ticks >= 0.3) & (ticks < 0.3 + PERIOD)) <= 2


def test_states_at_half_the_rate_keep_clock_ticks():
    states = np.arange(1, 250) * 2 * PERIOD + 0.5e-3
    ticks, locked = simulate(states, 0.5)
    assert not locked[10:].any()
    assert abs(np.median(np.diff(ticks)) - PERIOD) < 20e-6
