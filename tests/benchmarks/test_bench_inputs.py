"""What the benchmark accepts: question files, loopback URLs, and the targets/table it reports."""

from __future__ import annotations

import json

import pytest

from benchmarks import report
from benchmarks.load import BenchError, load_questions, require_loopback


def test_load_questions_reads_eli5_titles_and_flat_questions_once_each(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [{"title": "Why is the sky blue?"}, {"question": "How do magnets work?"}, {"title": "Why is the sky blue?"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_questions(path) == ["Why is the sky blue?", "How do magnets work?"]


def test_load_questions_names_the_flag_when_the_file_is_missing(tmp_path):
    with pytest.raises(BenchError, match="--questions"):
        load_questions(tmp_path / "absent.jsonl")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/", "http://localhost:9000", "http://[::1]:8000"])
def test_require_loopback_accepts_local_urls(url):
    assert require_loopback(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8000", "http://example.com:80", "ftp://127.0.0.1:21", "http://127.0.0.1"]
)
def test_require_loopback_refuses_other_urls(url):
    with pytest.raises(BenchError):
        require_loopback(url)


def _result(ratio: float | None, c32: dict | None) -> dict:
    level = {"concurrency": 32, "requests": 10, "errors": 0, "degraded": 0, "p50_ms": 100.0, "p95_ms": 200.0,
             "p99_ms": 300.0, "max_ms": 310.0, "throughput_rps": 160.0, "stopped_by_deadline": False,
             "error_examples": [], "gateway_p50_ms": {"retrieve": 80.0, "rank": 10.0, "total": 95.0},
             "cpu_ms_per_request": {"gateway": 1.0, "retrieval": 5.0, "ranking": 2.0, "load_generator": 1.0},
             "cores_busy": 1.8, "other_cores_busy": 0.6}
    return {
        "machine": {"cpus_usable": 2, "cpu_model": "test cpu", "memory_gib": 4.0, "load_average": [0.1, 0.2, 0.3]},
        "load_average_after_http": None,
        "code": {"commit": "0123456789abcdef", "uncommitted_changes": True},
        "artifacts": {"artifact_version": "v1", "bundle": "/b"},
        "settings": {"gateway_url": "http://127.0.0.1:8000", "stack": "existing", "requests": 10, "warmup": 2,
                     "k": 10, "candidates": 100, "questions_used": 12, "questions_available": 50,
                     "questions_file": "q.jsonl"},
        "stack_start_s": None,
        "http": [{**level, **(c32 or {})}] if c32 is not None else [],
        "inprocess": None,
        "memory_mib": {"gateway": {"peak_rss_mib": 60.0, "rss_mib": 55.0}, "ranking": None},
        "overhead": {"ratio": ratio},
    }


def test_targets_compare_measured_figures_with_the_issue():
    met = {t["name"]: t["met"] for t in report.targets(_result(1.6, {"p99_ms": 450.0}))}
    assert met == {
        "conc 1: end-to-end p50 / in-process p50": False,
        "conc 32: throughput (req/s)": True,
        "conc 32: p99 (ms)": False,
        "conc 32: errors": True,
    }


def test_targets_not_measured_when_a_level_is_missing():
    assert all(t["met"] is None for t in report.targets(_result(None, None)))


def test_table_names_every_target():
    result = _result(1.2, {})
    result["targets"] = report.targets(result)
    table = report.format_table(result)
    assert all(t["name"] in table for t in result["targets"])
    assert "unknown (process not found" in table  # ranking memory was not readable
    assert "figures are noisy" in table  # 0.6 cores used by other processes
