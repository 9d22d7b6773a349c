"""The ranking service over HTTP, on the tiny trained bundle (real encoder, real Keras reranker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.manifest import ANSWERS_FILE, load_manifest
from common.schemas import MAX_QUESTION_CHARS, MAX_RANK_CANDIDATES, embedding_to_base64
from ranking_service.config import RankingSettings
from ranking_service.main import create_app

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}
SKY = "Why is the sky blue?"
DIM = 384


@pytest.fixture(scope="module")
def client(tiny_artifacts: Path) -> Iterator[TestClient]:
    """One started app per module: the lifespan loads MiniLM and the reranker, which takes seconds."""
    with TestClient(create_app(RankingSettings(artifacts_dir=tiny_artifacts))) as client:
        yield client


@pytest.fixture(scope="module")
def answers(tiny_bundle: Path) -> list[dict[str, Any]]:
    """The bundle's answer store, in row order."""
    return [json.loads(line) for line in (tiny_bundle / ANSWERS_FILE).read_text().splitlines()]


@pytest.fixture(scope="module")
def ids(answers: list[dict[str, Any]]) -> list[str]:
    """Twelve candidate ids, in corpus order (deliberately not the retrieval order)."""
    return [answer["id"] for answer in answers[:12]]


@pytest.fixture(scope="module")
def version(tiny_bundle: Path) -> str:
    return load_manifest(tiny_bundle).artifact_version


@pytest.fixture(scope="module")
def sky_embedding(client: TestClient) -> list[float]:
    """SKY encoded by the service's own encoder, as the retrieval stage would send it."""
    return client.app.state.artifacts.current.value.encoder.encode([SKY])[0].tolist()


def rank(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def candidates_of(ids: list[str]) -> list[dict[str, str]]:
    return [{"id": answer_id} for answer_id in ids]


# --- /v1/rank --------------------------------------------------------------------------------


def test_rank_returns_every_candidate_best_first(client: TestClient, ids: list[str]) -> None:
    ranked = rank(client, question=SKY, candidates=candidates_of(ids))["candidates"]
    assert sorted(c["id"] for c in ranked) == sorted(ids)
    assert [c["rank"] for c in ranked] == list(range(1, len(ids) + 1))
    scores = [c["score"] for c in ranked]
    assert scores == sorted(scores, reverse=True)


def test_rank_reports_retrieval_rank_and_score(client: TestClient, ids: list[str]) -> None:
    ranked = rank(client, question=SKY, candidates=candidates_of(ids))["candidates"]
    assert sorted(c["retrieval_rank"] for c in ranked) == list(range(1, len(ids) + 1))
    by_retrieval = sorted(ranked, key=lambda c: c["retrieval_rank"])
    dense = [c["retrieval_score"] for c in by_retrieval]
    assert dense == sorted(dense, reverse=True)
    assert all(-1.0 - 1e-4 <= s <= 1.0 + 1e-4 for s in dense)


def test_rank_returns_texts(client: TestClient, answers: list[dict[str, Any]], ids: list[str]) -> None:
    ranked = rank(client, question=SKY, candidates=candidates_of(ids))["candidates"]
    text_of = {answer["id"]: answer["text"] for answer in answers}
    assert all(c["text"] == text_of[c["id"]] for c in ranked)


def test_rank_puts_the_sky_answer_first(client: TestClient, answers: list[dict[str, Any]], ids: list[str]) -> None:
    sky_id = next(a["id"] for a in answers if a["text"].startswith("Sunlight is scattered by the molecules"))
    assert sky_id in ids
    ranked = rank(client, question=SKY, candidates=candidates_of(ids))["candidates"]
    assert ranked[0]["id"] == sky_id


def test_rank_reports_the_artifact_version(client: TestClient, ids: list[str], version: str) -> None:
    assert rank(client, question=SKY, candidates=candidates_of(ids))["artifact_version"] == version


def test_top_k_keeps_the_best(client: TestClient, ids: list[str]) -> None:
    full = rank(client, question=SKY, candidates=candidates_of(ids))["candidates"]
    top = rank(client, question=SKY, candidates=candidates_of(ids), top_k=3)["candidates"]
    assert [c["id"] for c in top] == [c["id"] for c in full[:3]]
    assert [c["rank"] for c in top] == [1, 2, 3]


def test_top_k_larger_than_candidates_returns_all(client: TestClient, ids: list[str]) -> None:
    ranked = rank(client, question=SKY, candidates=candidates_of(ids), top_k=MAX_RANK_CANDIDATES)["candidates"]
    assert len(ranked) == len(ids)


def test_include_text_false_omits_texts(client: TestClient, ids: list[str]) -> None:
    ranked = rank(client, question=SKY, candidates=candidates_of(ids), include_text=False)["candidates"]
    assert all(c["text"] is None for c in ranked)


def test_single_candidate_is_ranked(client: TestClient, ids: list[str]) -> None:
    ranked = rank(client, question=SKY, candidates=candidates_of(ids[:1]))["candidates"]
    assert [(c["id"], c["rank"], c["retrieval_rank"]) for c in ranked] == [(ids[0], 1, 1)]


def test_given_embedding_gives_the_same_ranking_as_encoding_here(
    client: TestClient, ids: list[str], sky_embedding: list[float]
) -> None:
    encoded_here = rank(client, question=SKY, candidates=candidates_of(ids))["candidates"]
    given = rank(client, question=SKY, candidates=candidates_of(ids), question_embedding=sky_embedding)["candidates"]
    assert [c["id"] for c in given] == [c["id"] for c in encoded_here]
    assert [c["score"] for c in given] == pytest.approx([c["score"] for c in encoded_here], abs=1e-4)


def test_given_base64_embedding_gives_the_same_ranking_as_the_list(
    client: TestClient, ids: list[str], sky_embedding: list[float]
) -> None:
    as_list = rank(client, question=SKY, candidates=candidates_of(ids), question_embedding=sky_embedding)
    as_base64 = rank(
        client, question=SKY, candidates=candidates_of(ids), question_embedding_b64=embedding_to_base64(sky_embedding)
    )
    assert as_base64 == as_list


@pytest.mark.parametrize("length", [0, DIM - 1, DIM + 1])
def test_base64_embedding_of_wrong_length_is_422(client: TestClient, ids: list[str], length: int) -> None:
    embedding = embedding_to_base64([1.0 / np.sqrt(max(length, 1))] * length)
    body = {"question": SKY, "candidates": candidates_of(ids), "question_embedding_b64": embedding}
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 422, response.text
    assert f"{length} values, expected {DIM}" in response.json()["detail"], response.text


def test_base64_embedding_that_is_not_finite_is_422(client: TestClient, ids: list[str]) -> None:
    body = {"question": SKY, "candidates": candidates_of(ids), "question_embedding_b64": embedding_to_base64([np.nan] * DIM)}
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 422, response.text
    assert "finite" in response.json()["detail"], response.text


def test_given_embedding_is_used_instead_of_encoding(client: TestClient, ids: list[str]) -> None:
    """An embedding of another question changes the dense scores: the service trusts what it is sent."""
    other = client.app.state.artifacts.current.value.encoder.encode(["Why do we yawn?"])[0].tolist()
    own = rank(client, question=SKY, candidates=candidates_of(ids))["candidates"]
    given = rank(client, question=SKY, candidates=candidates_of(ids), question_embedding=other)["candidates"]
    own_dense = {c["id"]: c["retrieval_score"] for c in own}
    assert any(abs(c["retrieval_score"] - own_dense[c["id"]]) > 1e-3 for c in given)


def test_client_retrieval_scores_are_not_trusted(client: TestClient, ids: list[str]) -> None:
    """retrieval_score in the request is informational; the service recomputes dense scores itself."""
    plain = rank(client, question=SKY, candidates=candidates_of(ids))["candidates"]
    bogus = [{"id": answer_id, "retrieval_score": 100.0 - i} for i, answer_id in enumerate(ids)]
    claimed = rank(client, question=SKY, candidates=bogus)["candidates"]
    assert [(c["id"], c["retrieval_rank"]) for c in claimed] == [(c["id"], c["retrieval_rank"]) for c in plain]


def test_matching_artifact_version_is_accepted(client: TestClient, ids: list[str], version: str) -> None:
    rank(client, question=SKY, candidates=candidates_of(ids), artifact_version=version)


def test_other_artifact_version_is_409(client: TestClient, ids: list[str], version: str) -> None:
    body = {"question": SKY, "candidates": candidates_of(ids), "artifact_version": "19700101-000000-000000"}
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "19700101-000000-000000" in detail and version in detail, response.text


def test_unknown_ids_are_422_naming_them(client: TestClient, ids: list[str]) -> None:
    body = {"question": SKY, "candidates": candidates_of([ids[0], "nope-1", "nope-2"])}
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "nope-1" in detail and "nope-2" in detail and ids[0] not in detail, response.text


def test_duplicate_ids_are_422(client: TestClient, ids: list[str]) -> None:
    response = client.post("/v1/rank", json={"question": SKY, "candidates": candidates_of([ids[0], ids[1], ids[0]])})
    assert response.status_code == 422, response.text
    assert "unique" in response.json()["detail"], response.text


@pytest.mark.parametrize("length", [0, DIM - 1, DIM + 1, 8])
def test_embedding_of_wrong_length_is_422(client: TestClient, ids: list[str], length: int) -> None:
    embedding = [1.0 / np.sqrt(max(length, 1))] * length
    body = {"question": SKY, "candidates": candidates_of(ids), "question_embedding": embedding}
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 422, response.text
    assert f"{length} values, expected {DIM}" in response.json()["detail"], response.text


@pytest.mark.parametrize(
    "embedding",
    [
        pytest.param([0.0] * DIM, id="zero"),
        pytest.param([1.0] * DIM, id="norm-sqrt-dim"),
        pytest.param([2.0 / np.sqrt(DIM)] * DIM, id="norm-2"),
        pytest.param([0.1 / np.sqrt(DIM)] * DIM, id="norm-0.1"),
    ],
)
def test_embedding_that_is_not_unit_length_is_422(client: TestClient, ids: list[str], embedding: list[float]) -> None:
    body = {"question": SKY, "candidates": candidates_of(ids), "question_embedding": embedding}
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 422, response.text
    assert "L2-normalised" in response.json()["detail"], response.text


# --- validation ------------------------------------------------------------------------------

ONE = [{"id": "a1"}]
TOO_MANY = [{"id": f"a{i}"} for i in range(MAX_RANK_CANDIDATES + 1)]


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"json": {"candidates": ONE}}, id="missing-question"),
        pytest.param({"json": {"question": "", "candidates": ONE}}, id="empty-question"),
        pytest.param({"json": {"question": " \n\t ", "candidates": ONE}}, id="whitespace-question"),
        pytest.param({"json": {"question": "x" * (MAX_QUESTION_CHARS + 1), "candidates": ONE}}, id="question-too-long"),
        pytest.param({"json": {"question": 42, "candidates": ONE}}, id="question-not-a-string"),
        pytest.param({"json": {"question": SKY}}, id="missing-candidates"),
        pytest.param({"json": {"question": SKY, "candidates": []}}, id="empty-candidates"),
        pytest.param({"json": {"question": SKY, "candidates": TOO_MANY}}, id="too-many-candidates"),
        pytest.param({"json": {"question": SKY, "candidates": ["a1"]}}, id="candidate-not-an-object"),
        pytest.param({"json": {"question": SKY, "candidates": [{}]}}, id="candidate-without-id"),
        pytest.param({"json": {"question": SKY, "candidates": [{"id": ""}]}}, id="candidate-empty-id"),
        pytest.param({"json": {"question": SKY, "candidates": [{"id": "a1", "retrieval_score": "high"}]}},
                     id="retrieval-score-not-a-number"),
        pytest.param({"json": {"question": SKY, "candidates": [{"id": "a1", "rank": 1}]}}, id="extra-candidate-field"),
        pytest.param({"json": {"question": SKY, "candidates": ONE, "question_embedding": "0.1,0.2"}},
                     id="embedding-not-a-list"),
        pytest.param({"json": {"question": SKY, "candidates": ONE, "question_embedding": ["x"] * DIM}},
                     id="embedding-not-numbers"),
        pytest.param({"json": {"question": SKY, "candidates": ONE, "question_embedding_b64": "not base64!"}},
                     id="base64-embedding-not-base64"),
        pytest.param({"json": {"question": SKY, "candidates": ONE, "question_embedding": [0.6, 0.8],
                               "question_embedding_b64": embedding_to_base64([0.6, 0.8])}},
                     id="both-embeddings"),
        pytest.param({"json": {"question": SKY, "candidates": ONE, "top_k": 0}}, id="top-k-zero"),
        pytest.param({"json": {"question": SKY, "candidates": ONE, "top_k": "ten"}}, id="top-k-not-an-int"),
        pytest.param({"json": {"question": SKY, "candidates": ONE, "include_text": "maybe"}},
                     id="include-text-not-a-bool"),
        pytest.param({"json": {"question": SKY, "candidates": ONE, "questoin": SKY}}, id="extra-field"),
        pytest.param({"json": [SKY]}, id="body-not-an-object"),
        pytest.param({"content": b"not json", "headers": JSON}, id="not-json"),
        pytest.param({"content": b'{"question": "\xff", "candidates": [{"id": "a1"}]}', "headers": JSON},
                     id="invalid-utf8"),
        pytest.param({}, id="no-body"),
    ],
)
def test_bad_rank_request_is_422_naming_the_body(client: TestClient, request_kwargs: dict[str, Any]) -> None:
    response = client.post("/v1/rank", **request_kwargs)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, response.text
    assert all(error["loc"][0] == "body" for error in detail), response.text


# --- health and docs -------------------------------------------------------------------------


def test_healthz_is_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_artifact_version(client: TestClient, version: str) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["artifact_version"] == version


def test_openapi_lists_the_endpoints(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert {"/v1/rank", "/healthz", "/readyz"} <= set(response.json()["paths"])


# --- before the lifespan has loaded the bundle ------------------------------------------------


def test_readyz_is_503_until_the_bundle_is_loaded(tiny_artifacts: Path) -> None:
    client = TestClient(create_app(RankingSettings(artifacts_dir=tiny_artifacts)))  # no `with`: no lifespan
    response = client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.json()["status"] == "loading"


def test_rank_is_503_until_the_bundle_is_loaded(tiny_artifacts: Path) -> None:
    client = TestClient(create_app(RankingSettings(artifacts_dir=tiny_artifacts)))  # no `with`: no lifespan
    response = client.post("/v1/rank", json={"question": SKY, "candidates": ONE})
    assert response.status_code == 503, response.text
    assert "loading" in response.json()["detail"], response.text
