"""`python -m benchmarks` (`make bench`): latency, throughput and memory of the served stack.

1. Uses the stack already answering at --gateway-url, or starts one (launcher.stack) on the bundle
   in --artifacts at the ports of --gateway-url / --retrieval-url / --ranking-url.
2. Warm-up requests, then --requests requests through the gateway at each --concurrency level, each
   level with its own distinct real questions (a seeded shuffle of --questions).
3. Reads each service's peak memory (VmHWM) and stops the stack if it started it.
4. Runs the same pipeline in-process (encoder -> FAISS -> reranker, no HTTP) in a child process,
   one question at a time, on the questions of the concurrency-1 level: the service-split overhead
   is the ratio of the two p50s.
5. Prints a table with the issue's targets and writes bench-results/bench-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks import procinfo, report
from benchmarks.inprocess import run_inprocess
from benchmarks.load import BenchError, LevelResult, load_questions, require_loopback, run_level
from benchmarks.stats import ratio, stage_medians, summarize
from common import manifest as mf

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUESTIONS = REPO_ROOT.parent / "shared" / "data" / "eli5" / "dev.jsonl"
SERVICES = ("gateway", "retrieval", "ranking")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="artifacts dir (CURRENT) or one bundle")
    p.add_argument("--gateway-url", default="http://127.0.0.1:8000", help="used as is if a gateway is ready there")
    p.add_argument("--retrieval-url", default="http://127.0.0.1:8001")
    p.add_argument("--ranking-url", default="http://127.0.0.1:8002")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL with 'title' or 'question'")
    p.add_argument("--requests", type=_positive, default=300, help="measured requests per concurrency level")
    p.add_argument("--concurrency", type=_levels, default=[1, 8, 32], help="comma-separated levels (default 1,8,32)")
    p.add_argument("--warmup", type=_non_negative, default=32, help="warm-up requests before measuring")
    p.add_argument("--k", type=_positive, default=10)
    p.add_argument("--candidates", type=_positive, default=100)
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    p.add_argument("--max-seconds", type=float, default=45.0, help="time limit per level; stops sending after it")
    p.add_argument("--start-timeout", type=float, default=240.0, help="seconds to wait for a started stack")
    p.add_argument("--no-inprocess", action="store_true", help="skip the in-process measurement")
    p.add_argument("--seed", type=int, default=0, help="question shuffle")
    p.add_argument("--out-dir", type=Path, default=Path("bench-results"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so a started stack is stopped
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    try:
        result = run(args)
    except (BenchError, mf.ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(report.format_table(result))
    print(f"\nwritten: {result['json_path']}  (whole run {result['duration_s']:.0f} s)")
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the result dict (also written as JSON).

    Raises:
        BenchError, ArtifactError: something that stops the benchmark, with a one-line reason.
    """
    started = time.monotonic()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    urls = {name: require_loopback(getattr(args, f"{name}_url")) for name in SERVICES}
    artifacts = args.artifacts.resolve()
    bundle = mf.resolve_bundle(artifacts)
    version = mf.load_manifest(bundle, verify_hashes=False).artifact_version
    machine = procinfo.machine_info()

    questions = load_questions(args.questions)
    random.Random(args.seed).shuffle(questions)
    warmup, pool = questions[: args.warmup], questions[args.warmup :] or questions
    slices = {c: _take(pool, i * args.requests, args.requests) for i, c in enumerate(args.concurrency)}

    stack, stack_start_s = None, None
    served_version = _ready_version(urls["gateway"])
    if served_version is None:
        stack, stack_start_s = _start_stack(artifacts, urls, args.out_dir / f"logs-{stamp}", args.start_timeout)
    else:
        logger.info("using the stack already running at %s (artifact %s)", urls["gateway"], served_version)
        if served_version != version:
            logger.warning("the running stack serves %s, the in-process run loads %s", served_version, version)

    try:
        if stack is not None:
            served_version = _ready_version(urls["gateway"])
            pids = {name: procinfo.process_tree(stack.processes[name].pid) for name in SERVICES}
        else:
            pids = {name: _tree(procinfo.pids_listening_on(urlsplit(urls[name]).port)) for name in SERVICES}
        pids["load_generator"] = [os.getpid()]
        if warmup:
            logger.info("warm-up: %d requests", len(warmup))
            run_level(urls["gateway"], warmup, min(8, max(args.concurrency)), k=args.k, candidates=args.candidates,
                      timeout_s=args.timeout, max_seconds=args.max_seconds)
        http = []
        for concurrency in args.concurrency:
            logger.info("concurrency %d: %d requests", concurrency, len(slices[concurrency]))
            cpu_before = {name: procinfo.cpu_seconds(p) for name, p in pids.items()}
            busy_before = procinfo.machine_busy_seconds()
            level = run_level(urls["gateway"], slices[concurrency], concurrency, k=args.k,
                              candidates=args.candidates, timeout_s=args.timeout, max_seconds=args.max_seconds)
            busy = procinfo.machine_busy_seconds() - busy_before
            cpu_used = {name: procinfo.cpu_seconds(p) - cpu_before[name] for name, p in pids.items()}
            http.append(_level_figures(level, cpu_used, busy))
        memory = {name: procinfo.memory_mib(p) for name, p in pids.items()}
    finally:
        if stack is not None:
            stack.stop_all()
    load_after = procinfo.load_average()

    inprocess = None
    if not args.no_inprocess:
        base = slices.get(1, next(iter(slices.values())))
        inprocess, memory["in_process"] = _measure_inprocess(
            args, artifacts, base, warmup[:16], stopped=stack is not None
        )

    c1 = next((level for level in http if level["concurrency"] == 1), None)
    result: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "code": _code_version(),
        "load_average_after_http": load_after,
        "artifacts": {"dir": str(artifacts), "bundle": str(bundle), "artifact_version": version,
                      "served_version": served_version},
        "settings": {
            "gateway_url": urls["gateway"], "stack": "started" if stack else "existing",
            "requests": args.requests, "concurrency": args.concurrency, "warmup": len(warmup), "k": args.k,
            "candidates": args.candidates, "timeout_s": args.timeout, "max_seconds_per_level": args.max_seconds,
            "seed": args.seed, "questions_file": str(args.questions), "questions_available": len(questions),
            "questions_used": min(len(pool), args.requests * len(args.concurrency)) + len(warmup),
        },
        "stack_start_s": stack_start_s,
        "http": http,
        "inprocess": inprocess,
        "memory_mib": memory,
        "overhead": {
            "e2e_p50_c1_ms": c1 and c1["p50_ms"],
            "inprocess_p50_ms": inprocess and inprocess["p50_ms"],
            "ratio": ratio(c1 and c1["p50_ms"], inprocess and inprocess["p50_ms"]),
        },
    }
    result["targets"] = report.targets(result)
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["json_path"] = str(report.write_json(result, args.out_dir, stamp))
    return result


def _measure_inprocess(
    args: argparse.Namespace, artifacts: Path, questions: list[str], warmup: list[str], stopped: bool
) -> tuple[dict[str, Any], dict[str, float] | None]:
    """The in-process figures (and the child's memory), with the CPU other processes used meanwhile."""
    logger.info("in-process pipeline: %d requests, one at a time, in a child process", len(questions))
    cpu_before, busy_before, t0 = procinfo.children_cpu_seconds(), procinfo.machine_busy_seconds(), time.monotonic()
    child = run_inprocess(artifacts, questions, warmup, k=args.k, candidates=args.candidates)
    wall = time.monotonic() - t0
    child_cpu = procinfo.children_cpu_seconds() - cpu_before
    figures = {
        **summarize(child["latencies_s"], 0, sum(child["latencies_s"])).as_dict(),
        "stage_p50_ms": stage_medians(child["stage_timings_ms"]),
        "mode": "child process, after the stack stopped" if stopped else "child process, running stack idle",
        "load_s": child["load_s"],
        "threads": child["threads"],
        "artifact_version": child["artifact_version"],
        # over the child's whole life, loading included
        "other_cores_busy": _cores(procinfo.machine_busy_seconds() - busy_before - child_cpu, wall),
    }
    return figures, child["memory"]


def _level_figures(level: LevelResult, cpu_used: dict[str, float], machine_busy_s: float) -> dict[str, Any]:
    summary = summarize(level.latencies_s, level.errors, level.wall_s)
    n = max(1, summary.requests)
    return {
        "concurrency": level.concurrency,
        **summary.as_dict(),
        "degraded": level.degraded,
        "error_examples": level.error_examples,
        "stopped_by_deadline": level.stopped_by_deadline,
        "gateway_p50_ms": stage_medians(level.server_timings_ms),
        "cpu_ms_per_request": {name: round(1000 * used / n, 2) for name, used in cpu_used.items()},
        "cores_busy": _cores(sum(cpu_used.values()), level.wall_s),
        "other_cores_busy": _cores(machine_busy_s - sum(cpu_used.values()), level.wall_s),
    }


def _cores(cpu_s: float, wall_s: float) -> float:
    """Average number of cores busy: CPU seconds over wall seconds (never below 0: tick rounding)."""
    return round(max(0.0, cpu_s) / wall_s, 2) if wall_s > 0 else 0.0


def _start_stack(artifacts: Path, urls: dict[str, str], log_dir: Path, timeout: float):
    from launcher.stack import Stack

    host = urlsplit(urls["gateway"]).hostname or "127.0.0.1"
    ports = {name: urlsplit(url).port for name, url in urls.items()}
    busy = [f"{name} :{port}" for name, port in ports.items() if _port_in_use(host, port)]
    if busy:
        raise BenchError(
            f"no ready gateway at {urls['gateway']}, and ports are taken ({', '.join(busy)}); "
            "stop what listens there or pass other --gateway-url/--retrieval-url/--ranking-url"
        )
    stack = Stack(artifacts=artifacts, host=host, ports=ports, log_dir=log_dir)
    logger.info("starting the stack on %s (logs in %s) ...", artifacts, log_dir)
    t0 = time.monotonic()
    try:
        stack.start_all(timeout=timeout)
    except (RuntimeError, TimeoutError) as exc:
        stack.stop_all()
        raise BenchError(f"{exc}; see the service logs in {log_dir}") from None
    except BaseException:  # Ctrl-C or SIGTERM while starting: leave no service behind
        stack.stop_all()
        raise
    return stack, round(time.monotonic() - t0, 1)


def _ready_version(gateway_url: str) -> str | None:
    """The artifact version a ready gateway serves, or None if none is ready there."""
    try:
        response = httpx.get(f"{gateway_url}/readyz", timeout=2.0)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if response.status_code != 200 or body.get("status") != "ready":
        return None
    return body.get("artifact_version") or "unknown"


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _code_version() -> dict[str, object] | None:
    """The git commit measured, and whether the working tree had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return {"commit": commit.stdout.strip(), "uncommitted_changes": bool(status.stdout.strip())}


def _tree(pids: list[int]) -> list[int]:
    return [p for pid in pids for p in procinfo.process_tree(pid)]


def _take(pool: list[str], start: int, n: int) -> list[str]:
    """n questions from `pool` starting at `start`, wrapping around when the pool is smaller."""
    return [pool[(start + i) % len(pool)] for i in range(n)]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated integers expected, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"levels must be >= 1, got {text!r}")
    return levels
