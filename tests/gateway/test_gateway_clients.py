"""The upstream clients on their own: retries, deadlines, and which error each failure becomes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from common.schemas import RankRequest, RetrieveResponse
from gateway.clients import (
    RankingClient,
    RetrievalClient,
    UpstreamError,
    UpstreamFailed,
    UpstreamTimeout,
    UpstreamUnavailable,
)

Handler = Callable[[httpx.Request], httpx.Response]
RETRIEVED = {"artifact_version": "v1", "results": [{"question": "q", "candidates": []}]}


class Counting:
    """A `MockTransport` handler that counts the requests it gets."""

    def __init__(self, respond: Handler) -> None:
        self.respond = respond
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.respond(request)


def call_retrieve(handler: Handler, *, retries: int = 1, timeout_s: float = 1.0) -> RetrieveResponse:
    """One `retrieve` call through a fresh client whose network is `handler`."""

    async def call() -> RetrieveResponse:
        transport = httpx.MockTransport(handler)
        client = RetrievalClient("http://retrieval.test", timeout_s=timeout_s, retries=retries, transport=transport)
        try:
            return await client.retrieve("q", k=5)
        finally:
            await client.aclose()

    return asyncio.run(call())


def test_connect_error_is_retried_then_succeeds() -> None:
    def flaky(request: httpx.Request) -> httpx.Response:
        if handler.calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=RETRIEVED)

    handler = Counting(flaky)
    assert call_retrieve(handler, retries=1).artifact_version == "v1"
    assert handler.calls == 2


def test_connect_errors_past_the_retry_budget_are_unavailable() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    handler = Counting(refused)
    with pytest.raises(UpstreamUnavailable, match=r"^retrieval service unavailable: cannot connect") as info:
        call_retrieve(handler, retries=2)
    assert info.value.stage == "retrieval"
    assert handler.calls == 3


def test_read_timeout_is_not_retried() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    handler = Counting(slow)
    with pytest.raises(UpstreamTimeout, match=r"^retrieval service timed out after 1.0 s$"):
        call_retrieve(handler, retries=3)
    assert handler.calls == 1


def test_whole_call_deadline_is_enforced() -> None:
    async def call() -> None:
        async def hang(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(5)
            return httpx.Response(200, json=RETRIEVED)

        client = RetrievalClient("http://retrieval.test", timeout_s=0.05, transport=httpx.MockTransport(hang))
        try:
            await client.retrieve("q", k=5)
        finally:
            await client.aclose()

    with pytest.raises(UpstreamTimeout, match="after 0.05 s"):
        asyncio.run(asyncio.wait_for(call(), timeout=2))


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(503, json={"detail": "loading"}), "HTTP 503 from /v1/retrieve: loading"),
        (httpx.Response(404, text="nope"), "HTTP 404 from /v1/retrieve: nope"),
        (httpx.Response(200, json={"results": []}), "unexpected response from /v1/retrieve"),
        (httpx.Response(200, json={**RETRIEVED, "results": RETRIEVED["results"] * 2}), "expected 1 result, got 2"),
        (httpx.Response(500, text="x" * 1000), "x" * 200 + "..."),
    ],
)
def test_bad_answers_are_failures(response: httpx.Response, message: str) -> None:
    with pytest.raises(UpstreamFailed) as info:
        call_retrieve(lambda request: response)
    assert message in str(info.value)
    assert isinstance(info.value, UpstreamError)


def test_rank_posts_the_request_and_parses_the_answer() -> None:
    seen: list[httpx.Request] = []

    def ranking(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(409, json={"detail": "serving v2, asked for v1"})

    async def call() -> None:
        client = RankingClient("http://ranking.test", timeout_s=1.0, transport=httpx.MockTransport(ranking))
        try:
            await client.rank(RankRequest(question="q", candidates=[{"id": "a"}], artifact_version="v1"))
        finally:
            await client.aclose()

    with pytest.raises(UpstreamFailed, match=r"^ranking service failed: HTTP 409 from /v1/rank: serving v2"):
        asyncio.run(call())
    assert [(r.method, str(r.url)) for r in seen] == [("POST", "http://ranking.test/v1/rank")]


def test_ready_reports_a_non_200_as_not_ready() -> None:
    async def call() -> str:
        transport = httpx.MockTransport(lambda request: httpx.Response(503, json={"detail": "warming up"}))
        client = RankingClient("http://ranking.test", timeout_s=1.0, transport=transport)
        try:
            return (await client.ready()).model_dump_json()
        finally:
            await client.aclose()

    assert asyncio.run(call()) == '{"status":"not ready","artifact_version":null,"detail":"HTTP 503: warming up"}'
