"""Hot reload across the stack: the gateway never merges answers of two artifact versions while the
retrieval and ranking services swap to a new one, one after the other, with requests in flight.

All three apps run in-process on this event loop (lifespans entered here, `httpx.ASGITransport`
between them), so the bursts below really are concurrent with the reloads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.config import GatewaySettings
from gateway.main import create_app as create_gateway
from ranking_service.config import RankingSettings
from ranking_service.main import create_app as create_ranking
from retrieval_service.config import RetrievalSettings
from retrieval_service.main import create_app as create_retrieval
from tests.bundles import copy_bundle

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

FIXTURES = Path(__file__).resolve().parent / "fixtures"
QUESTIONS = [json.loads(line)["question"] for line in (FIXTURES / "tiny_train.jsonl").read_text().splitlines()][:8]
TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
V1, V2 = "20990101-000000-aaaaaa", "20990102-000000-bbbbbb"
BOUND_S = 120.0  # generous budgets: degradation here must come from versions, never from a slow machine


@dataclass
class Stack:
    gateway: httpx.AsyncClient
    retrieval: httpx.AsyncClient
    ranking: httpx.AsyncClient


def client_of(app: FastAPI, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}.test", timeout=BOUND_S)


@asynccontextmanager
async def stack(artifacts: Path) -> AsyncIterator[Stack]:
    common = {"artifacts_dir": artifacts, "reload_poll_s": 0, "admin_token": TOKEN}
    retrieval = create_retrieval(RetrievalSettings(**common))
    ranking = create_ranking(RankingSettings(**common))
    gateway = create_gateway(
        GatewaySettings(
            retrieval_url="http://retrieval.test",
            ranking_url="http://ranking.test",
            retrieval_timeout_s=BOUND_S,
            ranking_timeout_s=BOUND_S,
        ),
        retrieval_transport=httpx.ASGITransport(app=retrieval),
        ranking_transport=httpx.ASGITransport(app=ranking),
    )
    async with AsyncExitStack() as exits:
        for app in (retrieval, ranking, gateway):
            await exits.enter_async_context(app.router.lifespan_context(app))
        yield Stack(*[
            await exits.enter_async_context(client_of(app, name))
            for app, name in ((gateway, "gateway"), (retrieval, "retrieval"), (ranking, "ranking"))
        ])


async def burst(s: Stack) -> list[dict]:
    """Every question at once through the gateway; each must be a 200."""
    responses = await asyncio.gather(
        *(s.gateway.post("/v1/recommend", json={"question": q, "k": 3, "candidates": 10}) for q in QUESTIONS)
    )
    for response in responses:
        assert response.status_code == 200, response.text
    return [response.json() for response in responses]


async def reload_during_burst(s: Stack, service: httpx.AsyncClient) -> tuple[httpx.Response, list[dict]]:
    reload, answers = await asyncio.gather(service.post("/v1/admin/reload", headers=AUTH), burst(s))
    return reload, answers


def merged_nothing(body: dict) -> bool:
    """Reranked (ranking served the version retrieval named), or degraded because of the versions."""
    return body["reranked"] or "artifact version" in body["degraded_reason"]


async def test_gateway_never_merges_versions_while_the_stages_swap_one_by_one(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    copy_bundle(tiny_bundle, tmp_path, V1)
    async with stack(tmp_path) as s:
        before = await burst(s)
        copy_bundle(tiny_bundle, tmp_path, V2)  # a new version is published
        retrieval_reload, while_retrieval_swaps = await reload_during_burst(s, s.retrieval)
        between = await burst(s)  # retrieval serves V2, ranking still V1
        ranking_reload, while_ranking_swaps = await reload_during_burst(s, s.ranking)
        after = await burst(s)
        ready = [(await c.get("/readyz")).json()["artifact_version"] for c in (s.retrieval, s.ranking, s.gateway)]

    assert all(b["reranked"] and b["artifact_version"] == V1 for b in before), before
    assert retrieval_reload.json()["artifact_version"] == V2, retrieval_reload.text
    assert ranking_reload.json()["artifact_version"] == V2, ranking_reload.text
    for body in while_retrieval_swaps + while_ranking_swaps:
        assert body["artifact_version"] in (V1, V2)
        assert merged_nothing(body), body
    for body in between:
        assert (body["reranked"], body["artifact_version"]) == (False, V2), body
        assert "409" in body["degraded_reason"] and V1 in body["degraded_reason"], body
        assert [a["retrieval_rank"] for a in body["answers"]] == [1, 2, 3]  # retrieval order, V2's texts
    assert all(b["reranked"] and b["artifact_version"] == V2 for b in after), after
    assert ready == [V2, V2, V2]
