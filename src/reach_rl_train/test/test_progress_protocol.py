"""The trainer's progress lines: written by reach-rl-train --progress-json, read by train_node."""
import json

import pytest

from reach_rl_train.progress_protocol import PREFIX, format_event, iteration_summary, parse_line


def test_event_round_trips_through_one_line():
    line = format_event("iteration", iteration=3, max_iterations=400, steps_per_s=5120.5,
                        reward=-0.05, success=0.125)
    assert line.startswith(PREFIX) and "\n" not in line
    assert parse_line(line + "\n") == {"event": "iteration", "iteration": 3, "max_iterations": 400,
                                       "steps_per_s": 5120.5, "reward": -0.05, "success": 0.125}


def test_non_finite_numbers_become_null_so_the_line_stays_json():
    line = format_event("iteration", reward=float("nan"), steps_per_s=float("inf"))
    json.loads(line[len(PREFIX):])  # strict JSON: no NaN / Infinity tokens
    assert parse_line(line)["reward"] is None


@pytest.mark.parametrize("line", [
    "it    1/5 |     501 steps/s | reward  -0.050 | success   0.0%",
    "checkpoint /tmp/p_logs/checkpoint.pt",
    "", "   " + PREFIX + "{}",  # indented: not a progress line
    '{"event": "iteration"}',  # JSON without the prefix is human output too
])
def test_other_lines_are_not_events(line):
    assert parse_line(line) is None


@pytest.mark.parametrize("line, reason", [
    (PREFIX + "{not json", "malformed"),
    (PREFIX + "[1, 2]", "no known event"),
    (PREFIX + '{"event": "bogus"}', "no known event"),
    (PREFIX + '{"iteration": 1}', "no known event"),
])
def test_broken_progress_lines_are_errors(line, reason):
    with pytest.raises(ValueError, match=reason):
        parse_line(line)


def test_unknown_event_cannot_be_written():
    with pytest.raises(ValueError, match="unknown progress event 'progress'"):
        format_event("progress", iteration=1)


def test_iteration_summary_has_units_and_tolerates_missing_values():
    summary = dict(iteration_summary({"event": "iteration", "iteration": 7, "max_iterations": 400,
                                      "steps_per_s": 5120.4, "reward": -0.0512345, "success": 0.125,
                                      "final_error_mm": None}))
    assert summary["iteration"] == "7/400"
    assert summary["steps/s"] == "5120"
    assert summary["mean reward"] == "-0.0512"
    assert summary["success rate [%]"] == "12.5"
    assert summary["median final error [mm]"] == "-"  # null: no target finished yet
    assert summary["learning rate"] == "-"  # absent
    judged = dict(iteration_summary({"event": "iteration", "held_out_success_rate": 0.99,
                                     "held_out_median_time_to_1cm_s": 0.9,
                                     "held_out_median_time_held_s": 1.04}))
    assert judged["held-out median time to 1 cm [s]"] == "0.90"
    assert judged["held-out median time held from [s]"] == "1.04"
