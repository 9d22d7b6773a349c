"""POST /v1/recommend: the happy path and the degradation policy when a stage fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.schemas import embedding_from_base64
from gateway.config import GatewaySettings
from gateway.main import create_app

if TYPE_CHECKING:
    from conftest import FakeRanking, FakeRetrieval

QUESTION = {"question": "How do I reverse a list?", "k": 3, "candidates": 10}
RETRIEVAL_TOP3 = ["a0", "a1", "a2"]


def test_happy_path_returns_ranking_order(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reranked"] is True
    assert body["degraded_reason"] is None
    assert body["artifact_version"] == "v1"
    assert body["question"] == QUESTION["question"]
    assert [a["id"] for a in body["answers"]] == ["a9", "a8", "a7"]
    assert body["answers"][0] == {
        "id": "a9", "text": "text of a9", "score": 9.0, "retrieval_rank": 10, "retrieval_score": 0.9
    }
    assert set(body["timings_ms"]) >= {"retrieve", "rank", "total"}
    assert body["timings_ms"]["total"] >= body["timings_ms"]["retrieve"]


def test_happy_path_passes_embedding_and_version_to_ranking(
    app: FastAPI, retrieval: FakeRetrieval, ranking: FakeRanking
) -> None:
    with TestClient(app) as client:
        client.post("/v1/recommend", json=QUESTION)
    [retrieve] = retrieval.bodies("/v1/retrieve")
    assert retrieve == {
        "question": QUESTION["question"], "k": 10, "include_text": False, "include_embedding": True,
        "embedding_format": "base64",
    }
    [rank] = ranking.bodies("/v1/rank")
    assert list(embedding_from_base64(rank["question_embedding_b64"])) == pytest.approx([0.6, 0.8])
    assert "question_embedding" not in rank
    assert rank["artifact_version"] == "v1"
    assert rank["top_k"] == 3
    assert rank["include_text"] is True
    assert rank["candidates"][:2] == [{"id": "a0", "retrieval_score": 0.99}, {"id": "a1", "retrieval_score": 0.98}]
    assert retrieval.bodies("/v1/answers") == []


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("connect", "ranking service unavailable: cannot connect to http://ranking.test/"),
        ("timeout", "ranking service timed out after 2.0 s"),
        ("500", "ranking service failed: HTTP 500 from /v1/rank: boom"),
        ("garbage", "ranking service failed: unexpected response from /v1/rank"),
    ],
)
def test_ranking_failure_degrades_to_retrieval_order(
    app: FastAPI, retrieval: FakeRetrieval, ranking: FakeRanking, failure: str, reason: str
) -> None:
    ranking.failure = failure
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reranked"] is False
    assert body["degraded_reason"].startswith(reason)
    assert [a["id"] for a in body["answers"]] == RETRIEVAL_TOP3
    assert [a["text"] for a in body["answers"]] == [f"text of {i}" for i in RETRIEVAL_TOP3]
    assert [a["score"] for a in body["answers"]] == [0.99, 0.98, 0.97]
    assert [a["retrieval_rank"] for a in body["answers"]] == [1, 2, 3]
    assert retrieval.bodies("/v1/answers") == [{"ids": RETRIEVAL_TOP3}]


def test_ranking_connect_error_is_retried_once(app: FastAPI, ranking: FakeRanking) -> None:
    ranking.failure = "connect"
    with TestClient(app) as client:
        client.post("/v1/recommend", json=QUESTION)
    assert len(ranking.requests) == 2


def test_ranking_slower_than_its_budget_degrades(
    settings: GatewaySettings, retrieval: FakeRetrieval, ranking: FakeRanking
) -> None:
    settings.ranking_timeout_s = 0.05
    ranking.delay_s = 2.0
    app = create_app(
        settings, retrieval_transport=httpx.MockTransport(retrieval), ranking_transport=httpx.MockTransport(ranking)
    )
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 200, response.text
    assert response.json()["degraded_reason"] == "ranking service timed out after 0.05 s"
    assert response.json()["timings_ms"]["rank"] < 1000


def test_ranking_version_mismatch_degrades(app: FastAPI, ranking: FakeRanking) -> None:
    ranking.artifact_version = "v2"
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reranked"] is False
    assert body["artifact_version"] == "v1"
    assert "409" in body["degraded_reason"]
    assert [a["id"] for a in body["answers"]] == RETRIEVAL_TOP3


def test_ranking_answering_for_another_version_is_not_merged(app: FastAPI, ranking: FakeRanking) -> None:
    # A ranking service that ignores the requested version (no 409) is still caught.
    ranking.check_version = False
    ranking.artifact_version = "v2"
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reranked"] is False
    assert body["degraded_reason"] == "ranking service serves artifact version 'v2', retrieval serves 'v1'"
    assert [a["id"] for a in body["answers"]] == RETRIEVAL_TOP3


@pytest.mark.parametrize(
    ("failure", "status", "detail"),
    [
        ("connect", 503, "retrieval service unavailable: cannot connect to http://retrieval.test/"),
        ("timeout", 504, "retrieval service timed out after 5.0 s"),
        ("500", 502, "retrieval service failed: HTTP 500 from /v1/retrieve: boom"),
        ("garbage", 502, "retrieval service failed: unexpected response from /v1/retrieve"),
    ],
)
def test_retrieval_failure_is_an_error(
    app: FastAPI, retrieval: FakeRetrieval, ranking: FakeRanking, failure: str, status: int, detail: str
) -> None:
    retrieval.failure = failure
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(detail)
    assert ranking.requests == []


def test_answer_store_failure_while_degraded_is_an_error(
    app: FastAPI, retrieval: FakeRetrieval, ranking: FakeRanking
) -> None:
    ranking.failure = "500"
    retrieval.overrides["/v1/answers"] = httpx.Response(500, json={"detail": "store gone"})
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 502, response.text
    assert response.json()["detail"] == "retrieval service failed: HTTP 500 from /v1/answers: store gone"


def test_unexpected_error_is_a_bare_500(app: FastAPI, retrieval: FakeRetrieval) -> None:
    retrieval.failure = "crash"
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 500, response.text
    assert response.json() == {"detail": "internal error"}


def test_retrieval_swapping_versions_mid_request_is_served_from_the_new_version(
    app: FastAPI, retrieval: FakeRetrieval, ranking: FakeRanking
) -> None:
    """A hot reload of retrieval between /v1/retrieve and /v1/answers: the answer is the new version's
    top k (texts included, one call), never v1's order with v2's texts, and never an error."""
    ranking.failure = "500"
    handle = retrieval.handle

    def swap_after_first_retrieve(path: str, body: dict) -> httpx.Response:
        response = handle(path, body)
        if path == "/v1/retrieve":
            retrieval.artifact_version = "v2"
        return response

    retrieval.handle = swap_after_first_retrieve
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["artifact_version"], body["reranked"]) == ("v2", False)
    assert [(a["id"], a["text"]) for a in body["answers"]] == [(i, f"text of {i}") for i in RETRIEVAL_TOP3]
    assert [b["include_text"] for b in retrieval.bodies("/v1/retrieve")] == [False, True]


def test_no_candidates_gives_an_empty_answer_list(
    app: FastAPI, retrieval: FakeRetrieval, ranking: FakeRanking
) -> None:
    retrieval.overrides["/v1/retrieve"] = httpx.Response(
        200, json={"artifact_version": "v1", "results": [{"question": "q", "candidates": []}]}
    )
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json=QUESTION)
    assert response.status_code == 200, response.text
    assert response.json()["answers"] == []
    assert response.json()["degraded_reason"] == "retrieval returned no candidates"
    assert ranking.requests == []
