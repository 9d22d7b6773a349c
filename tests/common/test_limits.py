"""The request body size limit: 413 before the app parses anything, by Content-Length or by counting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from common.errors import install_error_handlers
from common.limits import DEFAULT_GATEWAY_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, BodySizeLimit
from common.schemas import (
    MAX_BATCH_QUESTIONS,
    MAX_QUESTION_CHARS,
    MAX_RANK_CANDIDATES,
    MAX_RECOMMEND_K,
    RankRequest,
    RecommendRequest,
    RetrieveRequest,
)

LIMIT = 100
JSON = {"content-type": "application/json"}


class Payload(BaseModel):
    text: str


def make_app(limit: int = LIMIT) -> FastAPI:
    app = FastAPI()

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/model")
    def model(body: Payload) -> dict[str, int]:  # FastAPI reads and parses the body itself
        return {"received": len(body.text)}

    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=limit)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as client:
        yield client


def chunks(total: int, size: int = 30) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked transfer encoding)."""
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def assert_413(response: Any) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": f"request body is larger than the limit of {LIMIT} bytes"}


# --- through an app ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, LIMIT - 1, LIMIT])
def test_body_within_the_limit_reaches_the_app(client: TestClient, size: int) -> None:
    response = client.post("/raw", content=b"x" * size)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": size}


@pytest.mark.parametrize("size", [0, LIMIT - 1, LIMIT])
def test_chunked_body_within_the_limit_reaches_the_app(client: TestClient, size: int) -> None:
    response = client.post("/raw", content=chunks(size))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": size}


@pytest.mark.parametrize("size", [LIMIT + 1, 10 * LIMIT, 1 << 20])
@pytest.mark.parametrize("path", ["/raw", "/model", "/no-such-path"])
def test_body_over_the_limit_by_content_length_is_413(client: TestClient, path: str, size: int) -> None:
    assert_413(client.post(path, content=b"x" * size, headers=JSON))


@pytest.mark.parametrize("size", [LIMIT + 1, 10 * LIMIT])
@pytest.mark.parametrize("path", ["/raw", "/model"])
def test_chunked_body_over_the_limit_is_413(client: TestClient, path: str, size: int) -> None:
    """FastAPI would answer 400 ("error parsing the body") when the read fails; the 413 replaces it."""
    assert_413(client.post(path, content=chunks(size), headers=JSON))


def test_parsed_body_within_the_limit_is_validated_as_usual(client: TestClient) -> None:
    response = client.post("/model", json={"text": "hello"})
    assert response.status_code == 200, response.text
    assert client.post("/model", json={"txt": "hello"}).status_code == 422


def test_get_without_body_passes(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200


# --- at the ASGI level: what the app sees ------------------------------------------------------


class Recorder:
    """An ASGI app that reads the whole body, swallowing any error, and answers 200."""

    def __init__(self) -> None:
        self.called = False
        self.read_error: Exception | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.called = True
        try:
            while (await receive()).get("more_body", False):
                pass
        except Exception as exc:  # a careless app: the middleware must still answer 413
            self.read_error = exc
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(app: Any, headers: list[tuple[bytes, bytes]], body_chunks: list[bytes]) -> tuple[int, bytes]:
    """Send one HTTP request through `app`; return the status and body it answered."""
    last = len(body_chunks) - 1
    messages = [{"type": "http.request", "body": c, "more_body": i < last} for i, c in enumerate(body_chunks)]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    asyncio.run(app(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return starts[0]["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_declared_length_over_the_limit_is_refused_before_the_app_runs() -> None:
    inner = Recorder()
    status, body = call(BodySizeLimit(inner, LIMIT), [(b"content-length", b"101")], [b"x" * 101])
    assert (status, inner.called) == (413, False)
    assert json.loads(body)["detail"].startswith("request body is larger than the limit")


def test_body_longer_than_its_declared_length_is_413() -> None:
    inner = Recorder()
    status, _ = call(BodySizeLimit(inner, LIMIT), [(b"content-length", b"10")], [b"x" * 60, b"x" * 60])
    assert status == 413
    assert inner.read_error is not None  # the app never got the bytes past the limit


def test_app_that_swallows_the_read_error_still_answers_413() -> None:
    status, _ = call(BodySizeLimit(Recorder(), LIMIT), [], [b"x" * 60, b"x" * 60])
    assert status == 413


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1.5", b"\xb2", b""])
def test_malformed_content_length_is_400(value: bytes) -> None:
    inner = Recorder()
    status, body = call(BodySizeLimit(inner, LIMIT), [(b"content-length", value)], [b"x"])
    assert (status, inner.called) == (400, False)
    assert "Content-Length" in json.loads(body)["detail"]


def test_non_http_scopes_pass_through() -> None:
    seen = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    asyncio.run(BodySizeLimit(app, 0)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        BodySizeLimit(Recorder(), -1)


# --- the defaults fit the largest valid requests ------------------------------------------------


def escaped_question() -> str:
    """A maximum-length question whose every character JSON-escapes to six bytes (\\u00e9)."""
    return "é" * MAX_QUESTION_CHARS


def test_default_fits_the_largest_rank_request() -> None:
    body = RankRequest(
        question=escaped_question(),
        candidates=[{"id": f"{i:0200d}", "retrieval_score": -0.12345678901234567} for i in range(MAX_RANK_CANDIDATES)],
        question_embedding=[-0.012345678901234567] * 384,
        top_k=MAX_RANK_CANDIDATES,
        artifact_version="20261203-184305-58a6ca",
    )
    assert len(json.dumps(body.model_dump()).encode()) < DEFAULT_MAX_BODY_BYTES


def test_default_fits_the_largest_retrieve_batch() -> None:
    body = RetrieveRequest(questions=[escaped_question()] * MAX_BATCH_QUESTIONS, k=1000, include_embedding=True)
    assert len(json.dumps(body.model_dump()).encode()) < DEFAULT_MAX_BODY_BYTES


def test_gateway_default_fits_the_largest_recommend_request() -> None:
    body = RecommendRequest(question=escaped_question(), k=MAX_RECOMMEND_K, candidates=MAX_RANK_CANDIDATES)
    assert len(json.dumps(body.model_dump()).encode()) < DEFAULT_GATEWAY_MAX_BODY_BYTES
