"""The ranking service under concurrency: requests reranked in one batch, each with its own answer.

Hot reload of the ranking service, with requests in flight, is covered end to end (through the
gateway) in tests/test_hot_reload.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from common.manifest import ANSWERS_FILE
from ranking_service.config import RankingSettings
from ranking_service.main import create_app

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
QUESTIONS = [json.loads(line)["question"] for line in (FIXTURES / "tiny_train.jsonl").read_text().splitlines()][:20]
BURST = len(QUESTIONS) + 2  # and two requests that fail their checks


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module scope, so that one app (one model load) serves the tests below


@pytest.fixture(scope="module")
async def app(tiny_artifacts: Path) -> AsyncIterator[FastAPI]:
    """Batches close when BURST requests are in, long before their wait would run out."""
    app = create_app(
        RankingSettings(artifacts_dir=tiny_artifacts, reload_poll_s=0, batch_max_size=BURST, batch_max_wait_ms=1000)
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ranking.test") as client:
        yield client


@pytest.fixture(scope="module")
def answer_ids(tiny_bundle: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (tiny_bundle / ANSWERS_FILE).read_text().splitlines()]


def bodies(app: FastAPI, answer_ids: list[str]) -> list[dict[str, Any]]:
    """Twenty different questions with candidate lists of 5, 10 or 12 answers; every other one sends
    the question's embedding (as the gateway does), the rest are encoded by the service."""
    encoder = app.state.artifacts.current.value.encoder
    out = []
    for i, question in enumerate(QUESTIONS):
        start, length = (3 * i) % len(answer_ids), (5, 10, 12)[i % 3]
        ids = [answer_ids[(start + j) % len(answer_ids)] for j in range(length)]
        body: dict[str, Any] = {"question": question, "candidates": [{"id": x} for x in ids], "include_text": False}
        if i % 2:
            body["question_embedding"] = encoder.encode([question])[0].tolist()
        out.append(body)
    return out


async def test_concurrent_requests_share_a_batch_and_each_gets_its_own_ranking(
    app: FastAPI, client: httpx.AsyncClient, answer_ids: list[str]
) -> None:
    ranker = app.state.artifacts.current.value
    version = app.state.artifacts.current.version
    good = bodies(app, answer_ids)
    bad = [
        {"question": QUESTIONS[0], "candidates": [{"id": answer_ids[0]}, {"id": "no-such-answer"}]},
        {"question": QUESTIONS[1], "candidates": [{"id": answer_ids[0]}], "artifact_version": "19700101-000000-000000"},
    ]
    before = app.state.batcher.stats.batches
    *responses, unknown, mismatch = await asyncio.gather(*(client.post("/v1/rank", json=b) for b in good + bad))
    assert app.state.batcher.stats.batches == before + 1
    assert unknown.status_code == 422 and "no-such-answer" in unknown.json()["detail"], unknown.text
    assert mismatch.status_code == 409, mismatch.text
    for body, response in zip(good, responses):
        assert response.status_code == 200, response.text
        assert response.json()["artifact_version"] == version
        ids = [c["id"] for c in body["candidates"]]
        rows, _ = ranker.store.rows(ids)
        embedding = body.get("question_embedding")
        order, scores, _, _ = ranker.rank(body["question"], rows, None if embedding is None else np.asarray(embedding))
        ranked = response.json()["candidates"]
        assert [c["id"] for c in ranked] == [ids[i] for i in order], body["question"]
        assert [c["score"] for c in ranked] == pytest.approx([float(scores[i]) for i in order], abs=1e-4)
