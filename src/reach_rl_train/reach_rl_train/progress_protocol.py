"""The trainer's machine-readable progress lines (``reach-rl-train --progress-json``).

Each event is one stdout line: ``PREFIX`` followed by a JSON object with an ``"event"`` key,
so a parent process (``train_node``) can pick them out of the human log lines around them:

* ``start``: ``max_iterations``, ``num_envs``, ``num_steps`` (per env and iteration),
  ``device``, ``backend``, ``policy`` (absolute path the policy will be written to);
* ``iteration``: ``iteration``, ``max_iterations``, ``steps_per_s`` (env steps per wall-clock
  second), ``reward`` (mean reward per policy step), ``success`` (fraction of finished
  targets reached within the success radius, 0..1; absent when no target finished),
  ``final_error_mm`` (median final distance, mm; absent likewise; pose targets also
  ``final_orientation_error_deg``), ``wall_s`` (s since
  training started), ``env_steps``, ``learning_rate``, ``action_std``; on iterations with a
  held-out evaluation (``run.until_goal``) also ``held_out_success_rate`` (0..1),
  ``held_out_median_final_error_mm``, ``held_out_median_time_to_1cm_s`` (pose targets:
  ``held_out_median_final_orientation_error_deg`` and ``held_out_median_time_to_pose_s``, the
  time to 1 cm and 5 deg, instead; success then asks for both),
  ``held_out_median_time_held_s`` (from when each target stays reached, the goal's time) and
  ``held_out_eval_s`` (the evaluation's own seconds), or, on iterations with a screen of fewer
  held-out targets (``held_out.GoalJudge``), the same keys with ``screen_`` for ``held_out_``;
* ``done``: ``iteration``, ``policy``, ``checkpoint`` (absolute paths), ``interrupted``
  (true when Ctrl-C stopped training early; the policy and checkpoint hold what was
  trained so far), ``goal_reached`` (``run.until_goal``: whether training stopped at its goal).

Plain stdlib: the trainer may run under another interpreter (Isaac Gym's Python 3.8).
"""
import json
import math
from typing import Any, Dict, List, Optional, Tuple

PREFIX = "@reach_rl_progress "
EVENTS = ("start", "iteration", "done")


def format_event(event: str, **fields: Any) -> str:
    """One progress line (no trailing newline) for ``event`` with ``fields``.

    Non-finite floats become null: JSON has no NaN or infinity."""
    if event not in EVENTS:
        raise ValueError("unknown progress event %r (known: %s)" % (event, ", ".join(EVENTS)))
    data = {"event": event}  # type: Dict[str, Any]
    for key, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        data[key] = value
    return PREFIX + json.dumps(data, sort_keys=True)


def parse_line(line: str) -> Optional[Dict[str, Any]]:
    """The event of a progress line, or None for any other line (human log output).

    A line that starts with ``PREFIX`` but does not hold a JSON object with a known
    ``"event"`` raises ValueError: the trainer and the node disagree on the protocol."""
    line = line.rstrip("\r\n")
    if not line.startswith(PREFIX):
        return None
    try:
        data = json.loads(line[len(PREFIX):])
    except ValueError as exc:
        raise ValueError("malformed progress line %r: %s" % (line, exc)) from None
    if not isinstance(data, dict) or data.get("event") not in EVENTS:
        raise ValueError("progress line %r has no known event (known: %s)" % (line, ", ".join(EVENTS)))
    return data


def _number(event: Dict[str, Any], key: str, fmt: str, scale: float = 1.0) -> str:
    value = event.get(key)
    return fmt % (scale * value) if isinstance(value, (int, float)) else "-"


def iteration_summary(event: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(key, text) pairs of an ``iteration`` event, units in the keys: for diagnostics."""
    summary = [
        ("iteration", "%s/%s" % (event.get("iteration", "-"), event.get("max_iterations", "-"))),
        ("steps/s", _number(event, "steps_per_s", "%.0f")),
        ("mean reward", _number(event, "reward", "%.4f")),
        ("success rate [%]", _number(event, "success", "%.1f", 100.0)),
        ("median final error [mm]", _number(event, "final_error_mm", "%.1f")),
        ("learning rate", _number(event, "learning_rate", "%.2e")),
        ("action std", _number(event, "action_std", "%.3f")),
        ("elapsed [s]", _number(event, "wall_s", "%.1f")),
    ]
    if "held_out_success_rate" not in event:
        return summary
    summary += [("held-out success [%]", _number(event, "held_out_success_rate", "%.1f", 100.0)),
                ("held-out median final error [mm]",
                 _number(event, "held_out_median_final_error_mm", "%.2f"))]
    held = ("held-out median time held from [s]",
            _number(event, "held_out_median_time_held_s", "%.2f"))
    if "held_out_median_time_to_pose_s" not in event:
        return summary + [("held-out median time to 1 cm [s]",
                           _number(event, "held_out_median_time_to_1cm_s", "%.2f")), held]
    return summary + [("held-out median final orientation error [deg]",
                       _number(event, "held_out_median_final_orientation_error_deg", "%.2f")),
                      ("held-out median time to 1 cm and 5 deg [s]",
                       _number(event, "held_out_median_time_to_pose_s", "%.2f")), held]
