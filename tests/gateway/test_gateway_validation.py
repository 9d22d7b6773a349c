"""422 for every malformed /v1/recommend body, always naming the body, and no upstream call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.schemas import MAX_QUESTION_CHARS, MAX_RANK_CANDIDATES, MAX_RECOMMEND_K

if TYPE_CHECKING:
    from conftest import FakeRetrieval

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"json": {"k": 5}}, id="missing-question"),
        pytest.param({"json": {"question": ""}}, id="empty-question"),
        pytest.param({"json": {"question": "  \n\t "}}, id="whitespace-question"),
        pytest.param({"json": {"question": "x" * (MAX_QUESTION_CHARS + 1)}}, id="question-too-long"),
        pytest.param({"json": {"question": "q", "k": 0}}, id="k-zero"),
        pytest.param({"json": {"question": "q", "k": MAX_RECOMMEND_K + 1, "candidates": 1000}}, id="k-over-max"),
        pytest.param({"json": {"question": "q", "candidates": MAX_RANK_CANDIDATES + 1}}, id="candidates-over-max"),
        pytest.param({"json": {"question": "q", "k": 10, "candidates": 5}}, id="candidates-below-k"),
        pytest.param({"json": {"question": 42}}, id="question-not-a-string"),
        pytest.param({"json": {"question": "q", "k": "ten"}}, id="k-not-an-int"),
        pytest.param({"json": {"question": "q", "k": 2.5}}, id="k-fractional"),
        pytest.param({"json": ["q"]}, id="body-not-an-object"),
        pytest.param({"json": {"question": "q", "questoin": "q"}}, id="extra-field"),
        pytest.param({"content": b"not json", "headers": JSON}, id="not-json"),
        pytest.param({"content": b'{"question": "q"', "headers": JSON}, id="truncated-json"),
        pytest.param({"content": b'{"question": "caf\xe9"}', "headers": JSON}, id="invalid-utf8"),
        pytest.param({"content": b'{"question": "caf\xe9"}', "headers": {"content-type": "text/plain"}},
                     id="invalid-utf8-text-plain"),
        pytest.param({"content": b'{"question": "q"}', "headers": {"content-type": "text/plain"}},
                     id="not-declared-json"),
        pytest.param({}, id="no-body"),
    ],
)
def test_bad_request_is_422_naming_the_body(
    app: FastAPI, retrieval: FakeRetrieval, request_kwargs: dict[str, Any]
) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/recommend", **request_kwargs)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, response.text
    assert all(error["loc"][0] == "body" for error in detail), response.text
    assert retrieval.requests == []


def test_valid_unicode_question_is_accepted(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/recommend", content='{"question": "café ☕"}'.encode(), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["question"] == "café ☕"
