"""The retrieval service over HTTP, on the tiny trained bundle (real encoder, real FAISS index)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.manifest import ANSWERS_FILE, EMBEDDINGS_FILE, load_manifest
from common.schemas import MAX_BATCH_QUESTIONS, MAX_QUESTION_CHARS, MAX_RETRIEVE_K, embedding_from_base64
from retrieval_service.config import RetrievalSettings
from retrieval_service.main import create_app

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
JSON = {"content-type": "application/json"}
SKY = "Why is the sky blue?"


@pytest.fixture(scope="module")
def client(tiny_artifacts: Path) -> Iterator[TestClient]:
    """One started app per module: the lifespan loads MiniLM, which takes seconds."""
    with TestClient(create_app(RetrievalSettings(artifacts_dir=tiny_artifacts))) as client:
        yield client


@pytest.fixture(scope="module")
def answers(tiny_bundle: Path) -> list[dict[str, Any]]:
    """The bundle's answer store, in row order."""
    return [json.loads(line) for line in (tiny_bundle / ANSWERS_FILE).read_text().splitlines()]


@pytest.fixture(scope="module")
def sky_answer_ids(answers: list[dict[str, Any]]) -> set[str]:
    """Ids of the corpus's two sky answers: the one paired with SKY in tiny_train.jsonl, and the one
    paired with "What makes the sky look blue during the day?" in tiny_eval.jsonl (the corpus holds both)."""
    pairs = [
        json.loads(line)
        for name in ("tiny_train.jsonl", "tiny_eval.jsonl")
        for line in (FIXTURES / name).read_text().splitlines()
    ]
    texts = {pair["answer"] for pair in pairs if "sky" in pair["question"].lower()}
    ids = {answer["id"] for answer in answers if answer["text"] in texts}
    assert len(ids) == 2
    return ids


def retrieve(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/retrieve", json=body)
    assert response.status_code == 200, response.text
    return response.json()


# --- /v1/retrieve ----------------------------------------------------------------------------


def test_retrieve_returns_k_candidates_ranked_best_first(client: TestClient, answers: list[dict[str, Any]]) -> None:
    body = retrieve(client, question=SKY, k=5)
    (result,) = body["results"]
    candidates = result["candidates"]
    assert result["question"] == SKY
    assert [c["rank"] for c in candidates] == [1, 2, 3, 4, 5]
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)
    text_of = {answer["id"]: answer["text"] for answer in answers}
    assert all(c["text"] == text_of[c["id"]] for c in candidates)


def test_retrieve_defaults_to_ten_candidates(client: TestClient) -> None:
    body = retrieve(client, question=SKY)
    assert len(body["results"][0]["candidates"]) == 10


def test_retrieve_finds_the_sky_answers_first(client: TestClient, sky_answer_ids: set[str]) -> None:
    body = retrieve(client, question=SKY, k=3)
    assert {c["id"] for c in body["results"][0]["candidates"][:2]} == sky_answer_ids


def test_retrieve_reports_the_manifest_artifact_version(client: TestClient, tiny_bundle: Path) -> None:
    body = retrieve(client, question=SKY, k=1)
    assert body["artifact_version"] == load_manifest(tiny_bundle).artifact_version


def test_retrieve_strips_the_question(client: TestClient) -> None:
    body = retrieve(client, question=f"  {SKY}\n", k=1)
    assert body["results"][0]["question"] == SKY


def test_batch_returns_one_result_per_question_in_order(client: TestClient, sky_answer_ids: set[str]) -> None:
    questions = ["Why do we yawn?", SKY, "How do airplanes stay in the air?"]
    body = retrieve(client, questions=questions, k=4)
    assert [r["question"] for r in body["results"]] == questions
    assert all(len(r["candidates"]) == 4 for r in body["results"])
    assert body["results"][1]["candidates"][0]["id"] in sky_answer_ids


def test_batch_result_matches_single_question_result(client: TestClient) -> None:
    single = retrieve(client, question=SKY, k=5)["results"][0]["candidates"]
    batch = retrieve(client, questions=["Why do we yawn?", SKY], k=5)["results"][1]["candidates"]
    assert [c["id"] for c in batch] == [c["id"] for c in single]
    assert [c["score"] for c in batch] == pytest.approx([c["score"] for c in single], abs=1e-5)


def test_include_text_false_omits_texts(client: TestClient) -> None:
    body = retrieve(client, question=SKY, k=3, include_text=False)
    assert [c["text"] for c in body["results"][0]["candidates"]] == [None, None, None]


def test_embedding_is_omitted_by_default(client: TestClient) -> None:
    body = retrieve(client, question=SKY, k=1)
    assert body["results"][0]["embedding"] is None


def test_include_embedding_returns_a_unit_vector(client: TestClient, tiny_bundle: Path) -> None:
    body = retrieve(client, question=SKY, k=1, include_embedding=True)
    embedding = np.asarray(body["results"][0]["embedding"], dtype=np.float32)
    assert embedding.shape == (load_manifest(tiny_bundle).embedding_dim,) == (384,)
    assert float(np.linalg.norm(embedding)) == pytest.approx(1.0, abs=1e-4)


def test_base64_embedding_is_the_same_vector(client: TestClient) -> None:
    as_list = retrieve(client, question=SKY, k=3, include_embedding=True)["results"][0]
    as_base64 = retrieve(client, question=SKY, k=3, include_embedding=True, embedding_format="base64")["results"][0]
    assert as_base64["embedding"] is None and as_list["embedding_b64"] is None
    assert list(embedding_from_base64(as_base64["embedding_b64"])) == as_list["embedding"]
    assert as_base64["candidates"] == as_list["candidates"]


def test_returned_embedding_reproduces_the_scores(
    client: TestClient, tiny_bundle: Path, answers: list[dict[str, Any]]
) -> None:
    """Cosine with the bundle's answer embeddings is the retrieval score (what the ranker relies on)."""
    result = retrieve(client, question=SKY, k=5, include_embedding=True)["results"][0]
    matrix = np.load(tiny_bundle / EMBEDDINGS_FILE)  # (n_answers, dim)
    row_of = {answer["id"]: row for row, answer in enumerate(answers)}
    rows = [row_of[c["id"]] for c in result["candidates"]]
    expected = matrix[rows] @ np.asarray(result["embedding"], dtype=np.float32)  # (5,)
    assert [c["score"] for c in result["candidates"]] == pytest.approx(expected.tolist(), abs=1e-4)


def test_k_larger_than_corpus_returns_every_answer(client: TestClient, answers: list[dict[str, Any]]) -> None:
    assert len(answers) == 40
    candidates = retrieve(client, question=SKY, k=MAX_RETRIEVE_K)["results"][0]["candidates"]
    assert sorted(c["id"] for c in candidates) == sorted(answer["id"] for answer in answers)
    assert [c["rank"] for c in candidates] == list(range(1, 41))


# --- /v1/answers -----------------------------------------------------------------------------


def test_answers_returns_texts_in_request_order(client: TestClient, answers: list[dict[str, Any]]) -> None:
    wanted = [answers[5], answers[0], answers[17]]
    response = client.post("/v1/answers", json={"ids": [a["id"] for a in wanted]})
    assert response.status_code == 200, response.text
    got = response.json()["answers"]
    assert [(a["id"], a["text"]) for a in got] == [(a["id"], a["text"]) for a in wanted]


def test_answers_reports_the_artifact_version(
    client: TestClient, tiny_bundle: Path, answers: list[dict[str, Any]]
) -> None:
    response = client.post("/v1/answers", json={"ids": [answers[0]["id"]]})
    assert response.status_code == 200, response.text
    assert response.json()["artifact_version"] == load_manifest(tiny_bundle).artifact_version


def test_answers_with_unknown_ids_is_422_naming_them(client: TestClient, answers: list[dict[str, Any]]) -> None:
    response = client.post("/v1/answers", json={"ids": [answers[0]["id"], "no-such-id", "also-missing"]})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "no-such-id" in detail and "also-missing" in detail, response.text
    assert answers[0]["id"] not in detail, response.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="missing-ids"),
        pytest.param({"ids": []}, id="empty-ids"),
        pytest.param({"ids": [""]}, id="empty-id"),
        pytest.param({"ids": "a1"}, id="ids-not-a-list"),
        pytest.param({"ids": ["a1"], "extra": 1}, id="extra-field"),
    ],
)
def test_answers_bad_body_is_422(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/v1/answers", json=body)
    assert response.status_code == 422, response.text
    assert all(error["loc"][0] == "body" for error in response.json()["detail"]), response.text


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"json": {"k": 5}}, id="missing-question"),
        pytest.param({"json": {"question": SKY, "questions": [SKY]}}, id="question-and-questions"),
        pytest.param({"json": {"question": ""}}, id="empty-question"),
        pytest.param({"json": {"question": " \n\t "}}, id="whitespace-question"),
        pytest.param({"json": {"question": "x" * (MAX_QUESTION_CHARS + 1)}}, id="question-too-long"),
        pytest.param({"json": {"question": 42}}, id="question-not-a-string"),
        pytest.param({"json": {"question": SKY, "k": 0}}, id="k-zero"),
        pytest.param({"json": {"question": SKY, "k": MAX_RETRIEVE_K + 1}}, id="k-over-max"),
        pytest.param({"json": {"question": SKY, "k": "ten"}}, id="k-not-an-int"),
        pytest.param({"json": {"questions": []}}, id="empty-questions"),
        pytest.param({"json": {"questions": [SKY, ""]}}, id="empty-question-in-batch"),
        pytest.param({"json": {"questions": [SKY] * (MAX_BATCH_QUESTIONS + 1)}}, id="batch-too-large"),
        pytest.param({"json": {"questions": SKY}}, id="questions-not-a-list"),
        pytest.param({"json": {"question": SKY, "include_text": "maybe"}}, id="include-text-not-a-bool"),
        pytest.param({"json": {"question": SKY, "embedding_format": "csv"}}, id="unknown-embedding-format"),
        pytest.param({"json": {"question": SKY, "questoin": SKY}}, id="extra-field"),
        pytest.param({"json": [SKY]}, id="body-not-an-object"),
        pytest.param({"content": b"not json", "headers": JSON}, id="not-json"),
        pytest.param({"content": b'{"question": "\xff"}', "headers": JSON}, id="invalid-utf8"),
        pytest.param({}, id="no-body"),
    ],
)
def test_bad_retrieve_request_is_422_naming_the_body(client: TestClient, request_kwargs: dict[str, Any]) -> None:
    response = client.post("/v1/retrieve", **request_kwargs)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, response.text
    assert all(error["loc"][0] == "body" for error in detail), response.text


def test_unicode_question_is_accepted(client: TestClient) -> None:
    body = '{"question": "Pourquoi le ciel est-il bleu ? ☀", "k": 2}'.encode()
    response = client.post("/v1/retrieve", content=body, headers=JSON)
    assert response.status_code == 200, response.text


# --- health and docs -------------------------------------------------------------------------


def test_healthz_is_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_artifact_version(client: TestClient, tiny_bundle: Path) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["artifact_version"] == load_manifest(tiny_bundle).artifact_version


def test_openapi_lists_the_endpoints(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert {"/v1/retrieve", "/v1/answers", "/healthz", "/readyz"} <= set(response.json()["paths"])


# --- before the lifespan has loaded the bundle ------------------------------------------------


def test_readyz_is_503_until_the_bundle_is_loaded(tiny_artifacts: Path) -> None:
    client = TestClient(create_app(RetrievalSettings(artifacts_dir=tiny_artifacts)))  # no `with`: no lifespan
    response = client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.json()["status"] == "loading"


def test_retrieve_is_503_until_the_bundle_is_loaded(tiny_artifacts: Path) -> None:
    client = TestClient(create_app(RetrievalSettings(artifacts_dir=tiny_artifacts)))  # no `with`: no lifespan
    response = client.post("/v1/retrieve", json={"question": SKY})
    assert response.status_code == 503, response.text
    assert "loading" in response.json()["detail"], response.text
