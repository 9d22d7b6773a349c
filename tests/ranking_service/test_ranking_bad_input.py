"""Bad input at the ranking service: oversized bodies (413) and values JSON or the schema cannot carry (422)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.limits import DEFAULT_MAX_BODY_BYTES
from common.manifest import ANSWERS_FILE
from common.schemas import MAX_QUESTION_CHARS, MAX_RANK_CANDIDATES
from ranking_service.config import RankingSettings
from ranking_service.main import create_app

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}
OVER = DEFAULT_MAX_BODY_BYTES + 1
DIM = 384


@pytest.fixture(scope="module")
def client(tiny_artifacts: Path) -> Iterator[TestClient]:
    with TestClient(create_app(RankingSettings(artifacts_dir=tiny_artifacts))) as client:
        yield client


@pytest.fixture(scope="module")
def answer_id(tiny_bundle: Path) -> str:
    return json.loads((tiny_bundle / ANSWERS_FILE).read_text().splitlines()[0])["id"]


def padded(body: bytes, size: int) -> bytes:
    return body + b" " * (size - len(body))


def chunked(body: bytes, size: int = 64 << 10) -> Iterator[bytes]:
    """`body` sent without Content-Length (chunked transfer encoding)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def rank_body(answer_id: str, **fields: str) -> bytes:
    """A rank request for one real candidate, with `fields` spliced in as raw JSON values."""
    body = {"question": '"Why is the sky blue?"', "candidates": f'[{{"id": "{answer_id}"}}]'} | fields
    return ("{" + ", ".join(f'"{name}": {value}' for name, value in body.items()) + "}").encode()


# --- 413 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_is_413(client: TestClient, answer_id: str, streamed: bool) -> None:
    body = padded(rank_body(answer_id), OVER)
    response = client.post("/v1/rank", content=chunked(body) if streamed else body, headers=JSON)
    assert response.status_code == 413, response.text
    assert str(DEFAULT_MAX_BODY_BYTES) in response.json()["detail"], response.text


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_body_at_the_limit_is_served(client: TestClient, answer_id: str, streamed: bool) -> None:
    body = padded(rank_body(answer_id), OVER - 1)
    response = client.post("/v1/rank", content=chunked(body) if streamed else body, headers=JSON)
    assert response.status_code == 200, response.text


def test_largest_valid_request_fits_the_default_limit(client: TestClient) -> None:
    """1000 candidates with 200-character ids, a 384-float embedding, a 2000-character question: parsed
    and validated (422 for the made-up ids), not refused for its size."""
    body = {
        "question": "é" * MAX_QUESTION_CHARS,
        "candidates": [
            {"id": f"{i:0200d}", "retrieval_score": 0.12345678901234567} for i in range(MAX_RANK_CANDIDATES)
        ],
        "question_embedding": [0.05103103630798288] * DIM,
    }
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("unknown candidate ids"), response.text


def test_limit_comes_from_settings(tiny_artifacts: Path, answer_id: str) -> None:
    """Refused before anything else: this app has not loaded its bundle (no lifespan), so a body within
    the limit gets the 503 of a loading service."""
    body = rank_body(answer_id)
    client = TestClient(create_app(RankingSettings(artifacts_dir=tiny_artifacts, max_body_bytes=len(body))))
    assert client.post("/v1/rank", content=body, headers=JSON).status_code == 503
    response = client.post("/v1/rank", content=body + b" ", headers=JSON)
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": f"request body is larger than the limit of {len(body)} bytes"}


def test_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKING_MAX_BODY_BYTES", "1234")
    assert RankingSettings().max_body_bytes == 1234


# --- 422 -------------------------------------------------------------------------------------

UNIT = 1 / DIM**0.5


@pytest.mark.parametrize(
    ("fields", "loc", "message"),
    [
        pytest.param({"question": '"a\\u0000b"'}, ["body", "question"], "control character U+0000", id="question-nul"),
        pytest.param({"question": '"del\\u007f"'}, ["body", "question"], "control character U+007F", id="question-del"),
        pytest.param({"question": '"\\ud800"'}, ["body", "question"], "unicode", id="question-lone-surrogate"),
        pytest.param({"question_embedding": "[" + f"{UNIT}, " * (DIM - 1) + "NaN]"},
                     ["body", "question_embedding", DIM - 1], "finite number", id="embedding-nan"),
        pytest.param({"question_embedding": "[Infinity" + f", {UNIT}" * (DIM - 1) + "]"},
                     ["body", "question_embedding", 0], "finite number", id="embedding-infinity"),
        pytest.param({"question_embedding": "[NaN, NaN]"}, ["body", "question_embedding", 0], "finite number",
                     id="embedding-short-and-nan"),
        pytest.param({"question_embedding": "[1e400" + f", {UNIT}" * (DIM - 1) + "]"},
                     ["body", "question_embedding", 0], "finite number", id="embedding-overflow"),
        pytest.param({"candidates": '[{"id": "a1", "retrieval_score": NaN}]'},
                     ["body", "candidates", 0, "retrieval_score"], "finite number", id="retrieval-score-nan"),
        pytest.param({"candidates": '[{"id": "a1", "retrieval_score": -Infinity}]'},
                     ["body", "candidates", 0, "retrieval_score"], "finite number", id="retrieval-score-infinity"),
        pytest.param({"candidates": '[{"id": "\\udc00"}]'}, ["body", "candidates", 0, "id"], "unicode",
                     id="candidate-id-lone-surrogate"),
        pytest.param({"top_k": "NaN"}, ["body", "top_k"], "valid integer", id="top-k-nan"),
        pytest.param({"top_k": "1e400"}, ["body", "top_k"], "valid integer", id="top-k-overflow"),
        pytest.param({"top_k": "100000000000000000000000000000"}, ["body", "top_k"], "less than or equal",
                     id="top-k-huge"),
    ],
)
def test_bad_value_is_422_naming_the_field(
    client: TestClient, answer_id: str, fields: dict[str, str], loc: list[Any], message: str
) -> None:
    response = client.post("/v1/rank", content=rank_body(answer_id, **fields), headers=JSON)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"] == loc and message in e["msg"] for e in errors), response.text


def test_artifact_version_that_is_not_valid_text_is_echoed_safely(client: TestClient, answer_id: str) -> None:
    """The 409 quotes the requested version; a lone surrogate (valid JSON, not encodable) once made it a 500."""
    response = client.post("/v1/rank", content=rank_body(answer_id, artifact_version='"v\\ud800"'), headers=JSON)
    assert response.status_code == 409, response.text
    assert "v\\ud800" in response.json()["detail"], response.text


def test_finite_embedding_and_scores_are_served(client: TestClient, answer_id: str) -> None:
    fields = {
        "question_embedding": "[" + ", ".join([str(UNIT)] * DIM) + "]",
        "candidates": f'[{{"id": "{answer_id}", "retrieval_score": -1e308}}]',
    }
    response = client.post("/v1/rank", content=rank_body(answer_id, **fields), headers=JSON)
    assert response.status_code == 200, response.text
