"""TimingHistogram: percentiles of durations within one bin of numpy's exact ones."""
import numpy as np

from reach_rl_deploy.ros_plumbing.timing_histogram import TimingHistogram


def test_percentiles_match_numpy_within_a_bin():
    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.lognormal(np.log(4e-4), 0.3, 20000), rng.uniform(2e-3, 9e-3, 150)])
    histogram = TimingHistogram()
    for s in samples:
        histogram.add(float(s))
    assert histogram.count == len(samples)
    assert histogram.max == samples.max()
    for q in (50, 90, 99, 99.9):
        exact = np.percentile(samples, q, method="inverted_cdf")
        assert exact <= histogram.percentile(q) <= exact * 1.0024, q
    assert "p99" in histogram.summary()


def test_empty_and_out_of_range():
    histogram = TimingHistogram()
    assert np.isnan(histogram.percentile(50))
    histogram.add(1e-9)  # below the first bin
    histogram.add(100.0)  # beyond the last
    assert histogram.percentile(50) <= 1e-6
    assert histogram.percentile(100) == 100.0
