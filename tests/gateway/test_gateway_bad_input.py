"""Bad input at the gateway: oversized bodies (413) and values JSON or the schema cannot carry (422).

Never a 500, always `{"detail": ...}`, and no upstream call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.limits import DEFAULT_GATEWAY_MAX_BODY_BYTES
from gateway.config import GatewaySettings
from gateway.main import create_app

if TYPE_CHECKING:
    from conftest import FakeRanking, FakeRetrieval

JSON = {"content-type": "application/json"}
OVER = DEFAULT_GATEWAY_MAX_BODY_BYTES + 1


def padded_body(size: int) -> bytes:
    """A valid recommend request, padded with whitespace to `size` bytes."""
    body = b'{"question": "Why is the sky blue?"}'
    return body + b" " * (size - len(body))


def chunked(body: bytes, size: int = 4096) -> Iterator[bytes]:
    """`body` sent without Content-Length (chunked transfer encoding)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda: padded_body(OVER), id="content-length"),
        pytest.param(lambda: chunked(padded_body(OVER)), id="chunked"),
        pytest.param(lambda: padded_body(10 * OVER), id="content-length-10x"),
        pytest.param(lambda: b"[" * OVER, id="not-even-json"),
    ],
)
def test_body_over_the_limit_is_413(app: FastAPI, retrieval: FakeRetrieval, content: Any) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/recommend", headers=JSON, content=content())
    assert response.status_code == 413, response.text
    assert str(DEFAULT_GATEWAY_MAX_BODY_BYTES) in response.json()["detail"], response.text
    assert retrieval.requests == []


@pytest.mark.parametrize(
    "content",
    [lambda: padded_body(OVER - 1), lambda: chunked(padded_body(OVER - 1))],
    ids=["content-length", "chunked"],
)
def test_body_at_the_limit_is_served(app: FastAPI, content: Any) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/recommend", headers=JSON, content=content())
    assert response.status_code == 200, response.text


def test_limit_comes_from_settings(
    settings: GatewaySettings, retrieval: FakeRetrieval, ranking: FakeRanking
) -> None:
    app = create_app(
        settings.model_copy(update={"max_body_bytes": 40}),
        retrieval_transport=httpx.MockTransport(retrieval),
        ranking_transport=httpx.MockTransport(ranking),
    )
    with TestClient(app) as client:
        assert client.post("/v1/recommend", headers=JSON, content=padded_body(40)).status_code == 200
        response = client.post("/v1/recommend", headers=JSON, content=padded_body(41))
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": "request body is larger than the limit of 40 bytes"}


def test_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "1234")
    assert GatewaySettings().max_body_bytes == 1234


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        pytest.param(b'{"question": "a\\u0000b"}', ["body", "question"], "control character U+0000", id="nul"),
        pytest.param(b'{"question": "ring\\u0007"}', ["body", "question"], "control character U+0007", id="bel"),
        pytest.param(b'{"question": "\\u001b[2J"}', ["body", "question"], "control character U+001B", id="escape"),
        pytest.param(b'{"question": "\xe2\x80\x85x\xc2\x9b"}', ["body", "question"], "control character U+009B",
                     id="c1-control-raw-utf8"),
        pytest.param(b'{"question": "\\ud800"}', ["body", "question"], "unicode", id="lone-surrogate"),
        pytest.param(b'{"question": "\\udc80 tail"}', ["body", "question"], "unicode", id="lone-low-surrogate"),
        pytest.param(b'{"question": "q", "k": NaN}', ["body", "k"], "valid integer", id="k-nan"),
        pytest.param(b'{"question": "q", "k": Infinity}', ["body", "k"], "valid integer", id="k-infinity"),
        pytest.param(b'{"question": "q", "k": -Infinity}', ["body", "k"], "valid integer", id="k-minus-infinity"),
        pytest.param(b'{"question": "q", "k": 1e400}', ["body", "k"], "valid integer", id="k-overflows-to-infinity"),
        pytest.param(b'{"question": "q", "k": 1e300}', ["body", "k"], "integer", id="k-huge-float"),
        pytest.param(b'{"question": "q", "k": 100000000000000000000000000000}', ["body", "k"], "less than or equal",
                     id="k-huge-int"),
        pytest.param(b'{"question": "q", "candidates": NaN}', ["body", "candidates"], "valid integer",
                     id="candidates-nan"),
        pytest.param(b'{"k": NaN}', ["body", "question"], "Field required", id="nan-in-echoed-input"),
        pytest.param(b'{"question": ["\\ud800"]}', ["body", "question"], "valid string",
                     id="surrogate-in-echoed-input"),
    ],
)
def test_value_json_cannot_carry_is_422_naming_the_field(
    app: FastAPI, retrieval: FakeRetrieval, body: bytes, loc: list[str], message: str
) -> None:
    """Python's JSON parser accepts NaN, Infinity and lone surrogates; the 422 (which echoes the input)
    must still be valid JSON, not a 500."""
    with TestClient(app) as client:
        response = client.post("/v1/recommend", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"] == loc and message in e["msg"] for e in errors), response.text
    assert retrieval.requests == []


def test_an_overlong_question_is_not_echoed_back_whole(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json={"question": "why " * 750})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "question"] and "2000" in error["msg"], response.text
    assert error["input"].endswith("... (3000 characters)") and len(error["input"]) < 250, response.text


def test_newlines_and_tabs_in_a_question_are_fine(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/recommend", json={"question": "Why\tis the sky\r\nblue?"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"question": "q", "k": ' + b"9" * 5000 + b"}", id="int-over-python-digit-limit"),
        pytest.param(b"[" * 30000 + b"]" * 30000, id="nested-too-deeply"),
    ],
)
def test_json_python_cannot_parse_is_400(app: FastAPI, retrieval: FakeRetrieval, body: bytes) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/recommend", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "There was an error parsing the body"}
    assert retrieval.requests == []

