"""The issue's targets, the printed table and the JSON file of one benchmark run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Issue 4, on a 2-core CPU with the three services and the load generator on one machine.
MAX_OVERHEAD_RATIO = 1.5  # concurrency 1: end-to-end p50 / in-process p50
MIN_THROUGHPUT_C32 = 150.0  # requests/s at concurrency 32
MAX_P99_C32_MS = 400.0
MAX_ERRORS_C32 = 0
NOISY_OTHER_CORES = 0.25  # CPU used by processes outside the benchmark, in cores, above which figures are flagged


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured figure and whether it is met (None when not measured)."""
    c32 = next((level for level in result["http"] if level["concurrency"] == 32), None)
    ratio = result["overhead"]["ratio"]

    def check(name: str, measured: float | None, target: str, ok: bool | None) -> dict[str, Any]:
        return {"name": name, "measured": measured, "target": target, "met": ok if measured is not None else None}

    return [
        check("conc 1: end-to-end p50 / in-process p50", ratio, f"<= {MAX_OVERHEAD_RATIO}",
              ratio is not None and ratio <= MAX_OVERHEAD_RATIO),
        check("conc 32: throughput (req/s)", c32 and c32["throughput_rps"], f">= {MIN_THROUGHPUT_C32:.0f}",
              bool(c32) and c32["throughput_rps"] >= MIN_THROUGHPUT_C32),
        check("conc 32: p99 (ms)", c32 and c32["p99_ms"], f"<= {MAX_P99_C32_MS:.0f}",
              bool(c32) and c32["p99_ms"] is not None and c32["p99_ms"] <= MAX_P99_C32_MS),
        check("conc 32: errors", c32 and c32["errors"], f"= {MAX_ERRORS_C32}",
              bool(c32) and c32["errors"] == MAX_ERRORS_C32),
    ]


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report printed at the end of a run."""
    lines = _header(result)
    other = [level["other_cores_busy"] for level in result["http"]]
    if result["inprocess"]:
        other.append(result["inprocess"]["other_cores_busy"])
    if other and max(other) >= NOISY_OTHER_CORES:
        lines.append(f"note: other work on this machine kept up to {max(other):.2f} cores busy during the "
                     "measurements ('other' below), so the figures are noisy")
    lines += [
        "",
        "HTTP, end to end through the gateway. Latency in ms; gateway = its own p50 timings; CPU ms per request;",
        "cores = cores kept busy by the stack and the client; other = by processes outside the benchmark",
        f"{'conc':>4} {'reqs':>5} {'err':>4} {'degr':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'req/s':>7}"
        f" | {'retrieve':>8} {'rank':>6} {'total':>6} | {'gw':>5} {'retr':>5} {'rank':>5} {'client':>6}"
        f" | {'cores':>5} {'other':>5}",
    ]
    for level in result["http"]:
        t, cpu = level["gateway_p50_ms"], level["cpu_ms_per_request"]
        lines.append(
            f"{level['concurrency']:>4} {level['requests']:>5} {level['errors']:>4} {level['degraded']:>4} "
            f"{_f(level['p50_ms'])} {_f(level['p95_ms'])} {_f(level['p99_ms'])} {_f(level['max_ms'])} "
            f"{level['throughput_rps']:>7.1f} | "
            f"{_f(t.get('retrieve'), 8)} {_f(t.get('rank'), 6)} {_f(t.get('total'), 6)} | "
            f"{_f(cpu.get('gateway'), 5)} {_f(cpu.get('retrieval'), 5)} {_f(cpu.get('ranking'), 5)} "
            f"{_f(cpu.get('load_generator'), 6)} | {level['cores_busy']:>5.2f} {level['other_cores_busy']:>5.2f}"
            + ("  (stopped at the time limit)" if level["stopped_by_deadline"] else "")
        )
        for example in level["error_examples"]:
            lines.append(f"       error: {example}")
    lines += ["", *_inprocess_lines(result), "", "peak memory (VmHWM, peak resident set of each process):"]
    for name, mem in result["memory_mib"].items():
        figures = f"{mem['peak_rss_mib']:>7.1f} MiB peak, {mem['rss_mib']:.1f} MiB at the end" if mem else None
        lines.append(f"   {name:<15} {figures or 'unknown (process not found or not readable)'}")
    lines += ["", "targets from issue 4 (information, not a test):"]
    for target in result["targets"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        lines.append(
            f"   {target['name']:<42} {_fmt_measured(target['measured']):>9}  target {target['target']:<7} {verdict}"
        )
    return "\n".join(lines)


def _header(result: dict[str, Any]) -> list[str]:
    m, s, a, code = result["machine"], result["settings"], result["artifacts"], result.get("code")
    stack = (f"started by the benchmark in {result['stack_start_s']:.1f} s" if s["stack"] == "started"
             else "already running")
    dirty = " + uncommitted changes" if code and code["uncommitted_changes"] else ""
    return [
        f"code: {code['commit'][:12]}{dirty}" if code else "code: unknown",
        f"machine: {m['cpus_usable']} cores ({m['cpu_model']}), {m['memory_gib']} GiB; load average before "
        f"{_fmt_load(m['load_average'])}, after the HTTP part {_fmt_load(result['load_average_after_http'])}",
        f"artifact {a['artifact_version']} ({a['bundle']}); gateway {s['gateway_url']} ({stack})",
        f"{s['requests']} requests per level after {s['warmup']} warm-up requests; k={s['k']}, "
        f"candidates={s['candidates']}; questions: {s['questions_used']} distinct of {s['questions_available']} "
        f"from {s['questions_file']}",
    ]


def _inprocess_lines(result: dict[str, Any]) -> list[str]:
    inp, s = result["inprocess"], result["settings"]
    if inp is None:
        return ["in-process pipeline: skipped"]
    st = inp["stage_p50_ms"]
    return [
        f"in-process pipeline (encode -> FAISS top {s['candidates']} -> rerank -> top {s['k']}; {inp['mode']}; "
        f"threads {inp['threads']})",
        f"   conc 1, {inp['requests']} requests: p50 {inp['p50_ms']:.1f}, p95 {inp['p95_ms']:.1f}, "
        f"p99 {inp['p99_ms']:.1f} ms, {inp['throughput_rps']:.1f} req/s; stage p50: encode {st['encode']:.1f}, "
        f"search {st['search']:.1f}, rerank {st['rerank']:.1f} ms; other work {inp['other_cores_busy']:.2f} cores",
    ]


def write_json(result: dict[str, Any], out_dir: Path, stamp: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def _f(value: float | None, width: int = 7) -> str:
    return f"{value:>{width}.1f}" if value is not None else f"{'-':>{width}}"


def _fmt_measured(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value}" if isinstance(value, int) else f"{value:.2f}"


def _fmt_load(load: list[float] | None) -> str:
    return "/".join(f"{x:.2f}" for x in load) if load else "unknown"
