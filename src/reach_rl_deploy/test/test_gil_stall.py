"""reach_rl_deploy.testing.gil_stall: the test-only stall schedule, and that a stall keeps the GIL."""
import threading
import time

import pytest

from reach_rl_deploy.testing.gil_stall import GilStalls, Stall, hold_gil, parse_stalls


def test_schedule_parses_periodic_and_one_off_stalls():
    assert parse_stalls("0.1/2, 0.25@7") == [Stall(0.1, 2.0, 2.0), Stall(0.25, None, 7.0)]
    assert parse_stalls("") == []
    for bad in ("0.1", "x/2", "0.3/0.2", "-1@3"):
        with pytest.raises(ValueError, match="REACH_RL_TEST_GIL_STALLS"):
            parse_stalls(bad)


def test_each_stall_is_due_once_per_period():
    stalls = GilStalls(parse_stalls("0.1/2,0.25@3"), start=100.0)
    assert stalls.due(101.9) == 0.0
    assert stalls.due(102.0) == pytest.approx(0.1)
    assert stalls.due(102.5) == 0.0  # already taken in this period
    assert stalls.due(103.0) == pytest.approx(0.25)
    assert stalls.due(104.1) == pytest.approx(0.1)
    assert stalls.due(200.0) == pytest.approx(0.1)  # once, however late the tick


def test_a_stall_keeps_other_python_threads_waiting():
    counts = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counts[0] += 1

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        time.sleep(0.05)
        before = counts[0]
        hold_gil(0.2)
        during = counts[0] - before  # at most what ran before this thread took the GIL back
        before = counts[0]
        time.sleep(0.2)
        free = counts[0] - before
    finally:
        stop.set()
        thread.join()
    assert during < free / 5, (during, free)
