"""Fake retrieval and ranking services (behind `httpx.MockTransport`) and a gateway app wired to them."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI

from common.schemas import embedding_to_base64
from gateway.config import GatewaySettings
from gateway.main import create_app

VERSION = "v1"
N_ANSWERS = 20


def _text(answer_id: str) -> str:
    return f"text of {answer_id}"


class FakeService:
    """Records requests. `failure` makes every call fail ("connect", "timeout", "500", "garbage",
    "crash"); `overrides` maps a path to a canned response."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.failure: str | None = None
        self.delay_s = 0.0
        self.artifact_version = VERSION
        self.overrides: dict[str, httpx.Response] = {}

    def bodies(self, path: str) -> list[dict]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.failure == "connect":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if self.failure == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if self.failure == "500":
            return httpx.Response(500, json={"detail": "boom"})
        if self.failure == "garbage":
            return httpx.Response(200, text="<html>not json</html>")
        if self.failure == "crash":
            raise RuntimeError("a bug, not an HTTP error")
        if request.url.path in self.overrides:
            return self.overrides[request.url.path]
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"status": "ready", "artifact_version": self.artifact_version})
        return self.handle(request.url.path, json.loads(request.content))

    def handle(self, path: str, body: dict) -> httpx.Response:
        raise NotImplementedError


EMBEDDING = [0.6, 0.8]


class FakeRetrieval(FakeService):
    """Answers a0, a1, ... in that order, scores 0.99, 0.98, ...; embedding [0.6, 0.8] (as a list or base64)."""

    def handle(self, path: str, body: dict) -> httpx.Response:
        if path == "/v1/retrieve":
            candidates = [
                {"id": f"a{i}", "rank": i + 1, "score": round(0.99 - i / 100, 2)}
                | ({"text": _text(f"a{i}")} if body.get("include_text", True) else {})
                for i in range(min(body["k"], N_ANSWERS))
            ]
            result = {"question": body["question"], "candidates": candidates}
            if body.get("include_embedding") and body.get("embedding_format") == "base64":
                result["embedding_b64"] = embedding_to_base64(EMBEDDING)
            elif body.get("include_embedding"):
                result["embedding"] = EMBEDDING
            return httpx.Response(200, json={"artifact_version": self.artifact_version, "results": [result]})
        if path == "/v1/answers":
            answers = [{"id": i, "text": _text(i)} for i in body["ids"]]
            return httpx.Response(200, json={"artifact_version": self.artifact_version, "answers": answers})
        return httpx.Response(404, json={"detail": "Not Found"})


class FakeRanking(FakeService):
    """Reverses the retrieval order (so a reranked response is easy to tell apart); 409 on a version
    mismatch unless `check_version` is off."""

    def __init__(self) -> None:
        super().__init__()
        self.check_version = True

    def handle(self, path: str, body: dict) -> httpx.Response:
        if path != "/v1/rank":
            return httpx.Response(404, json={"detail": "Not Found"})
        if self.check_version and body.get("artifact_version") not in (None, self.artifact_version):
            return httpx.Response(409, json={"detail": "artifact version mismatch"})
        order = list(reversed(list(enumerate(body["candidates"], start=1))))[: body.get("top_k")]
        ranked = [
            {
                "id": c["id"],
                "score": float(10 - rank),
                "rank": rank,
                "retrieval_score": c["retrieval_score"],
                "retrieval_rank": retrieval_rank,
            }
            | ({"text": _text(c["id"])} if body.get("include_text", True) else {})
            for rank, (retrieval_rank, c) in enumerate(order, start=1)
        ]
        return httpx.Response(200, json={"artifact_version": self.artifact_version, "candidates": ranked})


@pytest.fixture
def settings() -> GatewaySettings:
    return GatewaySettings(
        retrieval_url="http://retrieval.test",
        ranking_url="http://ranking.test",
        retrieval_timeout_s=5.0,
        ranking_timeout_s=2.0,
        retries=1,
    )


@pytest.fixture
def retrieval() -> FakeRetrieval:
    return FakeRetrieval()


@pytest.fixture
def ranking() -> FakeRanking:
    return FakeRanking()


@pytest.fixture
def app(settings: GatewaySettings, retrieval: FakeRetrieval, ranking: FakeRanking) -> FastAPI:
    """The gateway talking to the fakes; enter it with `with TestClient(app) as client:`."""
    return create_app(
        settings,
        retrieval_transport=httpx.MockTransport(retrieval),
        ranking_transport=httpx.MockTransport(ranking),
    )
