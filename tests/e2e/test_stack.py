"""End to end: the three services as real processes on loopback ports, from the tiny bundle."""

from __future__ import annotations

import socket
import threading
import time

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


class Load:
    """A few client threads sending requests to the gateway until stopped (bounded by `limit`)."""

    def __init__(self, stack: Stack, threads: int = 4, limit: int = 5000):
        self.stack, self.limit, self.statuses, self.reranked = stack, limit, [], []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stopping.is_set() and len(self.statuses) < self.limit:
                response = client.post(f"{self.stack.urls['gateway']}/v1/recommend", json=QUESTION)
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    self.reranked.append(response.json()["reranked"])
                time.sleep(0.02)

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def test_gateway_keeps_answering_under_load_while_ranking_restarts(stack):
    with Load(stack) as load:
        time.sleep(1)
        stack.stop("ranking")
        time.sleep(2)
        stack.start("ranking")
        stack.wait_ready(["ranking"])
        time.sleep(1)
    assert load.statuses and set(load.statuses) == {200}, load.statuses
    assert False in load.reranked and load.reranked[-1] is True, "".join("T" if r else "F" for r in load.reranked)


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
