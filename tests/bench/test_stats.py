"""LatencyStats on arrays whose statistics are known by hand, and the edge cases."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnv2deploy.bench.result import LatencyStats


def test_one_to_hundred():
    s = LatencyStats.from_samples(np.arange(1, 101, dtype=float))
    assert s.count == 100 and s.min == 1 and s.max == 100
    assert s.p50 == pytest.approx(50.5) and s.p90 == pytest.approx(90.1) and s.p99 == pytest.approx(99.01)
    assert s.mean == pytest.approx(50.5)
    assert s.std == pytest.approx(math.sqrt((100**2 - 1) / 12))  # population std of 1..n
    assert s.trimmed_mean == pytest.approx(50.5)  # 11..90 after dropping ten from each end


def test_trimmed_mean_drops_outliers_but_mean_does_not():
    samples = [10.0] * 18 + [1000.0, 0.001]  # 20 runs, one stall and one impossible-fast
    s = LatencyStats.from_samples(samples)
    assert s.trimmed_mean == pytest.approx(10.0)  # 10% of 20 = 2 dropped from each end
    assert s.mean == pytest.approx((180 + 1000.001) / 20)
    assert s.p50 == 10.0 and s.max == 1000.0 and s.min == 0.001


def test_unsorted_input_gives_the_same_answer():
    rng = np.random.default_rng(0)
    a = rng.exponential(3.0, 257) + 1
    x, y = asdict(LatencyStats.from_samples(a)), asdict(LatencyStats.from_samples(np.sort(a)[::-1]))
    assert x == pytest.approx(y, rel=1e-12)


def test_single_sample_and_fewer_than_ten():
    one = LatencyStats.from_samples([4.2])
    assert (one.count, one.p50, one.p99, one.min, one.max, one.std, one.trimmed_mean) == (1, 4.2, 4.2, 4.2, 4.2, 0.0, 4.2)
    few = LatencyStats.from_samples([1.0, 2.0, 6.0])  # 10% of 3 rounds to 0: nothing trimmed
    assert few.trimmed_mean == pytest.approx(3.0) and few.p50 == 2.0


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_spread_is_p90_over_p50():
    s = LatencyStats.from_samples(np.arange(1, 101, dtype=float))
    assert s.spread == pytest.approx((90.1 - 50.5) / 50.5)
    assert LatencyStats.from_samples([0.0, 0.0]).spread == 0.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e4, allow_nan=False), min_size=1, max_size=300))
def test_order_of_statistics(samples):
    s = LatencyStats.from_samples(samples)
    eps = 1e-9 * s.max
    assert s.min - eps <= s.p50 <= s.p90 + eps and s.p90 <= s.p99 + eps and s.p99 <= s.max + eps
    assert s.min - eps <= s.trimmed_mean <= s.max + eps and s.min - eps <= s.mean <= s.max + eps
    assert s.count == len(samples) and s.std >= 0


def test_loaded_needs_a_spread_that_is_large_in_milliseconds_too():
    """An idle VM's ~0.1 ms jitter on a 0.47 ms call is 23% but not load; a millisecond-scale tail is."""
    from mnv2deploy.bench.host import _loaded

    idle = LatencyStats.from_samples(np.r_[np.full(80, 0.47), np.full(20, 0.58)])
    busy = LatencyStats.from_samples(np.r_[np.full(80, 0.47), np.full(20, 2.5)])
    assert idle.spread > 0.2 and _loaded(idle, None) == (False, [])
    loaded, notes = _loaded(busy, None)
    assert loaded and "p90-p50 = 2.03 ms" in notes[0]
    # other processes' CPU time flags a run whatever its spread
    assert _loaded(idle, {"seconds": 5.0, "other_busy_cpus": 1.0, "steal_cpus": 0.0})[0]
