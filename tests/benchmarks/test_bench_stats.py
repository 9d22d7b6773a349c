"""Percentiles and summaries of the benchmark (pure functions; no timing)."""

from __future__ import annotations

import pytest

from benchmarks.stats import percentile, ratio, stage_medians, summarize


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 10.0), (50, 30.0), (25, 20.0), (90, 46.0), (99, 49.6), (100, 50.0)],
)
def test_percentile_interpolates_between_closest_ranks(q, expected):
    # numpy.percentile([10, 20, 30, 40, 50], q) gives the same values (its default "linear" method).
    assert percentile([50.0, 10.0, 40.0, 20.0, 30.0], q) == pytest.approx(expected)


def test_percentile_of_one_value_is_that_value():
    assert percentile([7.5], 99) == 7.5


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 100.5)])
def test_percentile_rejects_bad_input(values, q):
    with pytest.raises(ValueError):
        percentile(values, q)


def test_summarize_reports_milliseconds_and_successful_throughput():
    summary = summarize([0.010, 0.020, 0.030, 0.040], errors=1, wall_s=0.5)
    assert summary.requests == 4
    assert summary.errors == 1
    assert summary.throughput_rps == pytest.approx(6.0)  # 3 successful / 0.5 s
    assert summary.p50_ms == pytest.approx(25.0)
    assert summary.mean_ms == pytest.approx(25.0)
    assert summary.max_ms == pytest.approx(40.0)
    assert summary.p99_ms == pytest.approx(39.7)


def test_summarize_of_no_requests_has_no_percentiles():
    summary = summarize([], errors=0, wall_s=0.0)
    assert (summary.requests, summary.p50_ms, summary.p99_ms, summary.throughput_rps) == (0, None, None, 0.0)


@pytest.mark.parametrize(("errors", "wall_s"), [(-1, 1.0), (3, 1.0), (0, -0.1)])
def test_summarize_rejects_inconsistent_counts(errors, wall_s):
    with pytest.raises(ValueError):
        summarize([0.1, 0.2], errors=errors, wall_s=wall_s)


def test_stage_medians_skips_keys_a_request_lacks():
    timings = [{"retrieve": 10.0, "rank": 4.0}, {"retrieve": 30.0}, {"retrieve": 20.0, "rank": 6.0}]
    assert stage_medians(timings) == {"retrieve": 20.0, "rank": 5.0}


@pytest.mark.parametrize(
    ("a", "b", "expected"), [(30.0, 20.0, 1.5), (None, 20.0, None), (30.0, None, None), (1.0, 0.0, None)]
)
def test_ratio(a, b, expected):
    assert ratio(a, b) == expected
