"""Durations over a whole run in fixed memory: log-spaced bins, percentiles to within a bin.

The deploy node keeps one per timing figure (latency, inference, publish period) for as long as
it runs and reports their percentiles when it stops, so a benchmark can quote a p99 over
every tick rather than combine per-second windows.
"""
import math

import numpy as np

LOWEST = 1e-6  # s; shorter durations land in the first bin
HIGHEST = 10.0  # s; longer ones in an overflow bin, reported as the maximum
BINS_PER_DECADE = 1000  # a bin spans 0.23 % of its value


class TimingHistogram:
    """Counts durations [s] in log-spaced bins; ``percentile`` returns a bin's upper edge."""

    def __init__(self):
        decades = np.log10(HIGHEST / LOWEST)
        edges = LOWEST * 10.0 ** (np.arange(int(decades * BINS_PER_DECADE) + 1) / BINS_PER_DECADE)
        self.edges = edges.tolist()  # plain lists: add() runs once a tick, numpy calls cost more
        self.counts = [0] * (len(self.edges) + 1)  # the last: beyond HIGHEST
        self.count = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Count one duration [s] in the bin whose upper edge is the first at or above it."""
        edges = self.edges
        index = 0 if seconds <= LOWEST else min(
            int(math.ceil(math.log10(seconds / LOWEST) * BINS_PER_DECADE)), len(edges))
        while index < len(edges) and edges[index] < seconds:  # the logarithm's rounding
            index += 1
        while index > 0 and edges[index - 1] >= seconds:
            index -= 1
        self.counts[index] += 1
        self.count += 1
        self.max = max(self.max, seconds)

    def percentile(self, q: float) -> float:
        """The smallest bin edge [s] at or below which ``q`` percent of the durations lie
        (nan when empty); at most one bin (0.23 %) above the exact percentile."""
        if not self.count:
            return float("nan")
        rank = int(np.ceil(q / 100.0 * self.count))
        index = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1)))
        if index == len(self.edges):
            return self.max
        return float(min(self.edges[index], self.max))

    def summary(self, scale: float = 1e3, unit: str = "ms") -> str:
        """``p50 x | p99 y | max z <unit> (n)``, durations times ``scale``."""
        return "p50 %.3f | p99 %.3f | max %.3f %s (%d)" % (
            scale * self.percentile(50), scale * self.percentile(99), scale * self.max, unit, self.count)
