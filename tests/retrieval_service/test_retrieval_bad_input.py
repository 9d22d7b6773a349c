"""Bad input at the retrieval service: oversized bodies (413) and values JSON or the schema cannot carry (422)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.limits import DEFAULT_MAX_BODY_BYTES
from retrieval_service.config import RetrievalSettings
from retrieval_service.main import create_app

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}
OVER = DEFAULT_MAX_BODY_BYTES + 1


@pytest.fixture(scope="module")
def client(tiny_artifacts: Path) -> Iterator[TestClient]:
    with TestClient(create_app(RetrievalSettings(artifacts_dir=tiny_artifacts))) as client:
        yield client


def padded(body: bytes, size: int) -> bytes:
    return body + b" " * (size - len(body))


def chunked(body: bytes, size: int = 64 << 10) -> Iterator[bytes]:
    """`body` sent without Content-Length (chunked transfer encoding)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


# --- 413 -------------------------------------------------------------------------------------

RETRIEVE = b'{"question": "Why is the sky blue?", "k": 3}'


@pytest.mark.parametrize("path", ["/v1/retrieve", "/v1/answers"])
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda: padded(RETRIEVE, OVER), id="content-length"),
        pytest.param(lambda: chunked(padded(RETRIEVE, OVER)), id="chunked"),
        pytest.param(lambda: b'{"questions": [' + b'"x",' * (OVER // 4) + b'"x"]}', id="huge-batch"),
    ],
)
def test_body_over_the_limit_is_413(client: TestClient, path: str, content: Any) -> None:
    response = client.post(path, content=content(), headers=JSON)
    assert response.status_code == 413, response.text
    assert str(DEFAULT_MAX_BODY_BYTES) in response.json()["detail"], response.text


@pytest.mark.parametrize("content", [lambda: padded(RETRIEVE, OVER - 1), lambda: chunked(padded(RETRIEVE, OVER - 1))],
                         ids=["content-length", "chunked"])
def test_body_at_the_limit_is_served(client: TestClient, content: Any) -> None:
    response = client.post("/v1/retrieve", content=content(), headers=JSON)
    assert response.status_code == 200, response.text


def test_limit_comes_from_settings(tiny_artifacts: Path) -> None:
    """Refused before anything else: this app has not even loaded its bundle (no lifespan), so a body
    within the limit gets the 503 of a loading service."""
    client = TestClient(create_app(RetrievalSettings(artifacts_dir=tiny_artifacts, max_body_bytes=len(RETRIEVE))))
    assert client.post("/v1/retrieve", content=RETRIEVE, headers=JSON).status_code == 503
    response = client.post("/v1/retrieve", content=RETRIEVE + b" ", headers=JSON)
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": f"request body is larger than the limit of {len(RETRIEVE)} bytes"}


def test_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_MAX_BODY_BYTES", "1234")
    assert RetrievalSettings().max_body_bytes == 1234


# --- 422 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "loc", "message"),
    [
        pytest.param("/v1/retrieve", b'{"question": "a\\u0000b"}', ["body", "question"], "control character U+0000",
                     id="question-nul"),
        pytest.param("/v1/retrieve", b'{"question": "\\u001b[2J clear"}', ["body", "question"],
                     "control character U+001B", id="question-escape"),
        pytest.param("/v1/retrieve", b'{"questions": ["fine", "bell\\u0007"]}', ["body", "questions", 1],
                     "control character U+0007", id="batch-question-bel"),
        pytest.param("/v1/retrieve", b'{"question": "\\ud800"}', ["body", "question"], "unicode",
                     id="question-lone-surrogate"),
        pytest.param("/v1/retrieve", b'{"question": "q", "k": NaN}', ["body", "k"], "valid integer", id="k-nan"),
        pytest.param("/v1/retrieve", b'{"question": "q", "k": Infinity}', ["body", "k"], "valid integer",
                     id="k-infinity"),
        pytest.param("/v1/retrieve", b'{"question": "q", "k": 1e400}', ["body", "k"], "valid integer",
                     id="k-overflows-to-infinity"),
        pytest.param("/v1/retrieve", b'{"question": "q", "k": 1000000000000000000000000000000}', ["body", "k"],
                     "less than or equal to 1000", id="k-huge"),
        pytest.param("/v1/retrieve", b'{"question": "q", "include_text": NaN}', ["body", "include_text"],
                     "valid boolean", id="include-text-nan"),
        pytest.param("/v1/retrieve", b'{"k": -Infinity}', ["body", "k"], "valid integer", id="nan-in-echoed-input"),
        pytest.param("/v1/answers", b'{"ids": ["\\udfff"]}', ["body", "ids", 0], "unicode", id="id-lone-surrogate"),
        pytest.param("/v1/answers", b'{"ids": [NaN]}', ["body", "ids", 0], "valid string", id="id-nan"),
    ],
)
def test_bad_value_is_422_naming_the_field(
    client: TestClient, path: str, body: bytes, loc: list[Any], message: str
) -> None:
    response = client.post(path, content=body, headers=JSON)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"] == loc and message in e["msg"] for e in errors), response.text


def test_newlines_and_tabs_in_a_question_are_fine(client: TestClient) -> None:
    response = client.post("/v1/retrieve", json={"question": "Why\tis the sky\r\nblue?", "k": 1})
    assert response.status_code == 200, response.text
