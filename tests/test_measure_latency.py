"""The latency sampler: warm-up, the minimum-count AND minimum-time rule, median and p90."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from bench.measure.latency import LatencyConfig, LatencySamples, sample_latency


class FakeWork:
    """A unit of work that advances a fake clock by `cost` seconds per call."""

    def __init__(self, cost: float) -> None:
        self.now = 0.0
        self.cost = cost
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        self.now += self.cost

    def clock(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("min_count", "min_time_s", "expected"),
    [
        (6, 1.0, 6),  # the count binds: 6 x 0.25 s = 1.5 s >= 1.0 s
        (2, 1.0, 4),  # the time binds: 4 x 0.25 s reaches 1.0 s
        (1, 2.1, 9),  # 8 samples make 2.0 s < 2.1 s: a ninth is needed
        (3, 0.0, 3),
    ],
)
def test_stops_when_both_the_count_and_the_time_are_met(min_count, min_time_s, expected) -> None:
    work = FakeWork(cost=0.25)
    cfg = LatencyConfig(warmup=2, min_count=min_count, min_time_s=min_time_s)
    samples = sample_latency(work, cfg, "cpu", clock=work.clock)
    assert len(samples.samples_s) == expected
    assert work.calls == expected + 2, "warm-up calls run but are not sampled"
    assert samples.samples_s == (0.25,) * expected
    assert samples.total_s >= min_time_s


def test_real_clock_samples_sleeping_work() -> None:
    samples = sample_latency(lambda: time.sleep(0.01), LatencyConfig(1, 3, 0.05), "cpu")
    assert len(samples.samples_s) >= 3 and samples.total_s >= 0.05
    assert all(s >= 0.01 for s in samples.samples_s)
    # Sleeping uses wall time, not CPU time: the CPU figure is sampled per call and much smaller.
    assert len(samples.cpu_samples_s) == len(samples.samples_s)
    assert samples.cpu_median_s < samples.median_s


def test_median_and_p90_match_independent_implementations() -> None:
    values = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4, 0.35]
    times = iter(values)
    clock_values: list[float] = []
    now = 0.0
    for v in values:  # a clock that makes the samples exactly `values`
        clock_values += [now, now + v]
        now += v
    ticks = iter(clock_values)
    samples = sample_latency(
        lambda: next(times), LatencyConfig(0, len(values), 0.0), "cpu", clock=lambda: next(ticks)
    )
    assert samples.samples_s == pytest.approx(tuple(values))
    assert samples.median_s == pytest.approx(statistics.median(values))
    assert samples.p90_s == pytest.approx(float(np.percentile(values, 90)))
    assert LatencySamples((5.0,)).p90_s == 5.0
    # By hand: rank 0.9 x (4 - 1) = 2.7 -> 3 + 0.7 x (10 - 3) = 7.9.
    assert LatencySamples((1.0, 2.0, 3.0, 10.0)).p90_s == pytest.approx(7.9)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="min_count >= 1"):
        LatencyConfig(warmup=0, min_count=0, min_time_s=1.0)
