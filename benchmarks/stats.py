"""Latency percentiles and per-level summaries (pure functions; the timing happens elsewhere)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks (numpy's default method).

    Args:
        values: the sample, in any order.
        q: percentile in [0, 100].

    Raises:
        ValueError: `values` is empty or `q` is outside [0, 100].
    """
    if not values:
        raise ValueError("values must not be empty")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


@dataclass(frozen=True)
class Summary:
    """One measured run: latency percentiles in milliseconds, throughput of successful requests."""

    requests: int
    errors: int
    wall_s: float
    throughput_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def summarize(latencies_s: Sequence[float], errors: int, wall_s: float) -> Summary:
    """Summarise a run.

    Args:
        latencies_s: the latency of every request sent, failed ones included, in seconds.
        errors: how many of those requests failed (non-200 or transport error).
        wall_s: wall-clock duration of the run, for throughput = successful requests / wall_s.

    Raises:
        ValueError: `errors` is negative or more than the number of requests, or `wall_s` < 0.
    """
    if not 0 <= errors <= len(latencies_s):
        raise ValueError(f"errors must be between 0 and {len(latencies_s)}, got {errors}")
    if wall_s < 0:
        raise ValueError(f"wall_s must be >= 0, got {wall_s}")
    ms = [1000.0 * s for s in latencies_s]
    ok = len(ms) - errors
    return Summary(
        requests=len(ms),
        errors=errors,
        wall_s=round(wall_s, 3),
        throughput_rps=round(ok / wall_s, 2) if wall_s > 0 else 0.0,
        p50_ms=_round(percentile(ms, 50)) if ms else None,
        p95_ms=_round(percentile(ms, 95)) if ms else None,
        p99_ms=_round(percentile(ms, 99)) if ms else None,
        mean_ms=_round(sum(ms) / len(ms)) if ms else None,
        max_ms=_round(max(ms)) if ms else None,
    )


def stage_medians(timings: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """p50 of each key over per-request timing dicts (a key missing from some requests is skipped there)."""
    by_key: dict[str, list[float]] = {}
    for timing in timings:
        for key, value in timing.items():
            by_key.setdefault(key, []).append(float(value))
    return {key: _round(percentile(values, 50)) for key, values in by_key.items()}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator rounded to 3 places, or None when either is missing or the divisor is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _round(value: float) -> float:
    return round(value, 2)
