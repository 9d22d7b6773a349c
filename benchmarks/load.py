"""Async load generator: POST /v1/recommend with distinct questions at a fixed concurrency."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from gateway.transport import PooledTransport

MAX_ERROR_EXAMPLES = 5


class BenchError(RuntimeError):
    """A benchmark that cannot run (no questions, a non-loopback URL, a stack that does not start)."""


@dataclass
class LevelResult:
    """Every request of one concurrency level, in completion order."""

    concurrency: int
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    degraded: int = 0  # 200 answers with `reranked: false`
    server_timings_ms: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0
    stopped_by_deadline: bool = False

    def fail(self, message: str) -> None:
        self.errors += 1
        if len(self.error_examples) < MAX_ERROR_EXAMPLES:
            self.error_examples.append(message)


def require_loopback(url: str) -> str:
    """Return `url` without a trailing slash; refuse anything but a loopback http URL.

    Raises:
        BenchError: the scheme is not http(s) or the host is not loopback.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback or parts.port is None:
        raise BenchError(f"{url!r}: the benchmark only drives services on loopback, e.g. http://127.0.0.1:8000")
    return url.rstrip("/")


def load_questions(path: Path) -> list[str]:
    """Distinct question texts from a JSONL file: ELI5 rows (`title`) or flat rows (`question`).

    Raises:
        BenchError: the file is missing, unreadable or holds no questions.
    """
    if not path.is_file():
        raise BenchError(
            f"no questions file at {path}; pass --questions FILE "
            "(JSON lines with an ELI5 'title' or a 'question' field)"
        )
    questions: list[str] = []
    seen: set[str] = set()
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                row = json.loads(line)
                text = str(row.get("title") or row.get("question") or "").strip()
                if text and text not in seen:
                    seen.add(text)
                    questions.append(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise BenchError(f"cannot read questions from {path}: {exc}") from None
    if not questions:
        raise BenchError(f"{path} holds no 'title' or 'question' fields")
    return questions


def run_level(
    gateway_url: str,
    questions: Sequence[str],
    concurrency: int,
    *,
    k: int = 10,
    candidates: int = 100,
    timeout_s: float = 10.0,
    max_seconds: float = 60.0,
) -> LevelResult:
    """Send one request per question, `concurrency` at a time; stop early after `max_seconds`."""
    return asyncio.run(_drive(gateway_url, questions, concurrency, k, candidates, timeout_s, max_seconds))


async def _drive(
    gateway_url: str,
    questions: Sequence[str],
    concurrency: int,
    k: int,
    candidates: int,
    timeout_s: float,
    max_seconds: float,
) -> LevelResult:
    result = LevelResult(concurrency=concurrency)
    pending = iter(questions)  # shared by the workers; safe, they all run on this one event loop
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        for question in pending:
            if time.perf_counter() > deadline:
                result.stopped_by_deadline = True
                return
            sent = time.perf_counter()
            try:
                body = {"question": question, "k": k, "candidates": candidates}
                response = await client.post("/v1/recommend", json=body)
            except httpx.HTTPError as exc:
                result.latencies_s.append(time.perf_counter() - sent)
                result.fail(f"{type(exc).__name__}: {exc}")
                continue
            result.latencies_s.append(time.perf_counter() - sent)
            if response.status_code != 200:
                result.fail(f"HTTP {response.status_code}: {response.text[:200]}")
                continue
            answer = response.json()
            if not answer.get("reranked", True):
                result.degraded += 1
            result.server_timings_ms.append(answer.get("timings_ms") or {})

    # The gateway's lean keep-alive transport: the load generator shares the cores with the stack,
    # and httpx's default transport would cost it ~1 ms of CPU per request.
    transport = PooledTransport(max_connections=concurrency, max_keepalive=concurrency)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=timeout_s, transport=transport) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - started
    return result
