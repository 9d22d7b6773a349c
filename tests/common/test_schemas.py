"""Input rules of the wire contract that live in the schema types: questions and non-finite numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from common.schemas import (
    MAX_QUESTION_CHARS,
    Question,
    RankCandidate,
    RankRequest,
    embedding_from_base64,
    embedding_to_base64,
)

QUESTION = TypeAdapter(Question)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Why is the sky blue?", id="plain"),
        pytest.param("line one\nline two\r\n\tindented", id="newline-tab-cr"),
        pytest.param("Pourquoi le ciel est-il bleu ? ☀ 🌈", id="non-ascii"),
        pytest.param("family: 👨\u200d👩\u200d👧", id="zero-width-joiner"),
        pytest.param("x" * MAX_QUESTION_CHARS, id="max-length"),
        pytest.param(f"  {'x' * MAX_QUESTION_CHARS}  ", id="max-length-after-strip"),
    ],
)
def test_question_is_accepted(text: str) -> None:
    assert QUESTION.validate_python(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        pytest.param("a\x00b", "U+0000", id="nul"),
        pytest.param("ring \x07 the bell", "U+0007", id="bel"),
        pytest.param("\x1b[31mred", "U+001B", id="escape"),
        pytest.param("a\x0bb", "U+000B", id="vertical-tab-inside"),
        pytest.param("del\x7f", "U+007F", id="del"),
        pytest.param("c1\x85control", "U+0085", id="c1-next-line"),
        pytest.param("c1\x9b", "U+009B", id="c1-csi"),
    ],
)
def test_question_with_control_character_is_refused_naming_it(text: str, code: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(f"control character {code}")):
        QUESTION.validate_python(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(" \n\t\r ", id="whitespace"),
        pytest.param("x" * (MAX_QUESTION_CHARS + 1), id="too-long"),
        pytest.param("\ud800", id="lone-surrogate"),
    ],
)
def test_question_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        QUESTION.validate_python(text)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_retrieval_score_is_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        RankCandidate(id="a1", retrieval_score=value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_embedding_value_is_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="finite number") as caught:
        RankRequest(question="q", candidates=[{"id": "a1"}], question_embedding=[0.5, value])
    assert caught.value.errors()[0]["loc"] == ("question_embedding", 1)


def test_base64_embedding_round_trips_float32_exactly() -> None:
    vector = [0.6, -0.8, 1e-7, 3.4e38]
    expected = np.asarray(vector, dtype=np.float32)
    assert embedding_to_base64(vector) == embedding_to_base64(expected)
    decoded = np.asarray(embedding_from_base64(embedding_to_base64(vector)), dtype=np.float32)
    assert decoded.tolist() == expected.tolist()


def test_rank_request_takes_the_embedding_in_either_form() -> None:
    as_list = RankRequest(question="q", candidates=[{"id": "a1"}], question_embedding=[0.6, 0.8])
    as_base64 = RankRequest(question="q", candidates=[{"id": "a1"}], question_embedding_b64=embedding_to_base64([0.6, 0.8]))
    assert as_list.embedding() == [0.6, 0.8]
    assert list(as_base64.embedding()) == pytest.approx([0.6, 0.8])


def test_rank_request_with_both_embeddings_is_refused() -> None:
    with pytest.raises(ValidationError, match="at most one"):
        RankRequest(question="q", candidates=[{"id": "a1"}], question_embedding=[0.6, 0.8],
                    question_embedding_b64=embedding_to_base64([0.6, 0.8]))


@pytest.mark.parametrize(
    ("text", "message"),
    [("not base64!", "not valid base64"), ("AAAA", "3 bytes, not a whole number"), ("AAA", "not valid base64")],
)
def test_bad_base64_embedding_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        RankRequest(question="q", candidates=[{"id": "a1"}], question_embedding_b64=text)
    assert caught.value.errors()[0]["loc"] == ("question_embedding_b64",)

