"""End to end: the three services as real processes on loopback ports, from the tiny bundle."""

from __future__ import annotations

import socket

import httpx
import pytest

from launcher.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUESTION = {"question": "Why is the sky blue?", "k": 3, "candidates": 20}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tiny_artifacts, tmp_path_factory):
    stack = Stack(
        artifacts=tiny_artifacts,
        ports={"gateway": free_port(), "retrieval": free_port(), "ranking": free_port()},
        log_dir=tmp_path_factory.mktemp("logs"),
    )
    try:
        stack.start_all(timeout=240)
    except Exception:
        stack.stop_all()
        raise
    yield stack
    stack.stop_all()


def recommend(stack: Stack) -> httpx.Response:
    return httpx.post(f"{stack.urls['gateway']}/v1/recommend", json=QUESTION, timeout=30)


def test_each_stage_answers_directly(stack):
    retrieved = httpx.post(f"{stack.urls['retrieval']}/v1/retrieve", json={"question": "Why is the sky blue?", "k": 5})
    assert retrieved.status_code == 200, retrieved.text
    ids = [c["id"] for c in retrieved.json()["results"][0]["candidates"]]
    ranked = httpx.post(
        f"{stack.urls['ranking']}/v1/rank",
        json={"question": "Why is the sky blue?", "candidates": [{"id": i} for i in ids]},
    )
    assert ranked.status_code == 200, ranked.text
    assert sorted(c["id"] for c in ranked.json()["candidates"]) == sorted(ids)


def test_gateway_reranks(stack):
    response = recommend(stack)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reranked"] is True
    assert len(body["answers"]) == 3
    assert "blue" in body["answers"][0]["text"]  # one of the two sky answers in the corpus
    assert {"id", "text", "score", "retrieval_rank", "retrieval_score"} <= set(body["answers"][0])
    version = httpx.get(f"{stack.urls['retrieval']}/readyz").json()["artifact_version"]
    assert body["artifact_version"] == version


def test_gateway_degrades_then_recovers_when_ranking_stops(stack):
    stack.stop("ranking")
    degraded = recommend(stack)
    assert degraded.status_code == 200, degraded.text
    body = degraded.json()
    assert body["reranked"] is False and body["degraded_reason"]
    assert [a["retrieval_rank"] for a in body["answers"]] == [1, 2, 3]
    assert all(a["text"] for a in body["answers"])

    stack.start("ranking")
    stack.wait_ready(["ranking"])
    assert recommend(stack).json()["reranked"] is True


def test_gateway_answers_503_when_retrieval_stops(stack):
    stack.stop("retrieval")
    response = recommend(stack)
    assert response.status_code == 503, response.text
    assert "retrieval" in response.json()["detail"]
    stack.start("retrieval")
    stack.wait_ready(["retrieval"])
    assert recommend(stack).status_code == 200
