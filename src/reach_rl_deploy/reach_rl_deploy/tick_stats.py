"""What the deploy node counts about its own loop: one diagnostics window at a time, and the
timing figures of the whole run (:class:`~reach_rl_deploy.ros_plumbing.timing_histogram.TimingHistogram`)."""
from typing import Dict, Iterable, List, Tuple

import numpy as np

from reach_rl_deploy.ros_plumbing.timing_histogram import TimingHistogram

# Timing figures [s] kept per window and over the whole run (logged when the node stops).
RUN_TIMING = ("joint_state->command latency", "joint_state sent->command latency", "inference")


class TickStats:
    """Ticks, filter activity and timing samples of the window since ``since`` (monotonic s);
    ``window_values`` reports the window and starts the next one."""

    def __init__(self, now: float):
        self.run_timing = {name: TimingHistogram() for name in RUN_TIMING}
        self._start_window(now)

    def _start_window(self, now: float) -> None:
        self.since = now
        self.ticks = 0
        self.activity = {}  # type: Dict[str, int]  # filter limit name -> ticks it was active
        self.timing = {name: [] for name in RUN_TIMING}  # type: Dict[str, List[float]]

    def record(self, name: str, seconds: float) -> None:
        """One sample of timing figure ``name`` (of RUN_TIMING) [s], for this window and the run."""
        self.timing[name].append(seconds)
        self.run_timing[name].add(seconds)

    def count_activity(self, names: Iterable[str]) -> None:
        for name in names:
            self.activity[name] = self.activity.get(name, 0) + 1

    def window_values(self, now: float) -> List[Tuple[str, str]]:
        """Diagnostics key/value pairs of the window ending at ``now``; starts the next window."""
        elapsed = max(now - self.since, 1e-9)
        values = [("loop rate [Hz]", "%.1f" % (self.ticks / elapsed))]
        for name in RUN_TIMING:
            us = 1e6 * np.asarray(self.timing[name])
            for q in (50, 99):
                values.append(("%s p%d [us]" % (name, q),
                               "%.0f" % np.percentile(us, q) if len(us) else "-"))
        activity = [("filter %s [ticks]" % k, str(v)) for k, v in sorted(self.activity.items())]
        self._start_window(now)
        return values + activity

    def run_report(self) -> List[str]:
        """One line per timing figure over the whole run."""
        return ["  %s: %s" % (name, self.run_timing[name].summary()) for name in RUN_TIMING]
