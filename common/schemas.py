"""Request and response models for the three HTTP services (the wire contract)."""

from __future__ import annotations

import array
import base64
import binascii
import re
import sys
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_QUESTION_CHARS = 2000
MAX_BATCH_QUESTIONS = 64
MAX_RETRIEVE_K = 1000
MAX_RANK_CANDIDATES = 1000
MAX_RECOMMEND_K = 100

# C0 and C1 control characters and DEL; ordinary whitespace (tab, newline, carriage return) is fine.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _no_control_characters(text: str) -> str:
    found = _CONTROL.search(text)
    if found:
        raise ValueError(f"contains the control character U+{ord(found.group()):04X} at position {found.start()}")
    return text


Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS),
    AfterValidator(_no_control_characters),
]
AnswerId = Annotated[str, StringConstraints(min_length=1, max_length=200)]

# An embedding can also travel as base64 of its little-endian float32 values: 2 kB for 384
# dimensions instead of ~8 kB of JSON numbers, and no float formatting or parsing on either side
# (the gateway passes it from retrieval to ranking as an opaque string).
MAX_EMBEDDING_DIM = 4096


def embedding_to_base64(vector: Any) -> str:
    """A vector (numpy array or sequence of floats) as base64 of little-endian float32 values (`*_b64` fields)."""
    if hasattr(vector, "astype"):  # numpy, without importing it here: the gateway never loads it
        raw = vector.astype("<f4").tobytes()
    else:
        values = array.array("f", vector)
        if sys.byteorder == "big":
            values.byteswap()
        raw = values.tobytes()
    return base64.b64encode(raw).decode("ascii")


def embedding_from_base64(text: str) -> array.array:
    """The float32 values in a `*_b64` field (checked by the schema: base64 of whole float32 values)."""
    values = array.array("f")
    values.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":
        values.byteswap()
    return values


def _float32_base64(text: str) -> str:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    if len(raw) % 4:
        raise ValueError(f"decodes to {len(raw)} bytes, not a whole number of float32 values")
    return text


EmbeddingBase64 = Annotated[
    str, StringConstraints(max_length=(MAX_EMBEDDING_DIM * 4 + 2) // 3 * 4), AfterValidator(_float32_base64)
]


class _Strict(BaseModel):
    # Unknown fields are rejected so that a typo ("questoin") is a 422, not silently ignored; NaN and
    # Infinity (which Python's JSON parser accepts) are a 422 naming the field, not a number; strict
    # types: "5" or 5.0 for an integer, or 1 for a boolean, is a 422 rather than silently coerced.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


# --- retrieval -------------------------------------------------------------------------------


class RetrieveRequest(_Strict):
    """Either one `question` or a batch of `questions`."""

    question: Question | None = None
    questions: Annotated[list[Question], Field(min_length=1, max_length=MAX_BATCH_QUESTIONS)] | None = None
    k: int = Field(10, ge=1, le=MAX_RETRIEVE_K, description="Candidates per question.")
    include_text: bool = Field(True, description="Return each candidate's answer text.")
    include_embedding: bool = Field(
        False, description="Return each question's embedding (lets the ranking stage skip re-encoding)."
    )
    embedding_format: Literal["list", "base64"] = Field(
        "list",
        description="With include_embedding: 'list' fills `embedding` (numbers), 'base64' fills `embedding_b64` "
        "(little-endian float32, 4 bytes per dimension: compact).",
    )

    @model_validator(mode="after")
    def _one_of(self) -> RetrieveRequest:
        if (self.question is None) == (self.questions is None):
            raise ValueError("give exactly one of 'question' or 'questions'")
        return self

    def all_questions(self) -> list[str]:
        return [self.question] if self.question is not None else list(self.questions or [])


class RetrievedAnswer(BaseModel):
    id: str
    rank: int = Field(description="1-based position in the retrieval order.")
    score: float = Field(description="Cosine similarity between question and answer embeddings.")
    text: str | None = None


class RetrievalResult(BaseModel):
    question: str
    candidates: list[RetrievedAnswer]
    embedding: list[float] | None = None
    embedding_b64: str | None = Field(
        None, description="The embedding as base64 of little-endian float32 values (embedding_format 'base64')."
    )


class RetrieveResponse(BaseModel):
    artifact_version: str
    results: list[RetrievalResult]


class AnswersRequest(_Strict):
    ids: Annotated[list[AnswerId], Field(min_length=1, max_length=MAX_RANK_CANDIDATES)]


class AnswerRecord(BaseModel):
    id: str
    text: str
    score: float | None = Field(None, description="The answer's votes in the source data, if any.")


class AnswersResponse(BaseModel):
    artifact_version: str
    answers: list[AnswerRecord]


# --- ranking ---------------------------------------------------------------------------------


class RankCandidate(_Strict):
    id: AnswerId
    retrieval_score: float | None = None


class RankRequest(_Strict):
    question: Question
    candidates: Annotated[list[RankCandidate], Field(min_length=1, max_length=MAX_RANK_CANDIDATES)]
    question_embedding: list[float] | None = Field(
        None, description="The question's embedding from the retrieval stage; encoded here if absent."
    )
    question_embedding_b64: EmbeddingBase64 | None = Field(
        None,
        description="The same as base64 of little-endian float32 values (retrieval's `embedding_b64`); "
        "give at most one of the two.",
    )
    top_k: int | None = Field(None, ge=1, le=MAX_RANK_CANDIDATES, description="Return only the best top_k.")
    include_text: bool = True
    artifact_version: str | None = Field(
        None, description="If set, refuse (409) unless the ranking service serves this artifact version."
    )

    @model_validator(mode="after")
    def _one_embedding(self) -> RankRequest:
        if self.question_embedding is not None and self.question_embedding_b64 is not None:
            raise ValueError("give at most one of 'question_embedding' or 'question_embedding_b64'")
        return self

    def embedding(self) -> Sequence[float] | None:
        """The question embedding, in whichever form it came, or None."""
        if self.question_embedding_b64 is not None:
            return embedding_from_base64(self.question_embedding_b64)
        return self.question_embedding


class RankedAnswer(BaseModel):
    id: str
    score: float = Field(description="Reranker score (higher is better).")
    rank: int
    retrieval_score: float
    retrieval_rank: int
    text: str | None = None


class RankResponse(BaseModel):
    artifact_version: str
    candidates: list[RankedAnswer]


# --- gateway ---------------------------------------------------------------------------------


class RecommendRequest(_Strict):
    question: Question
    k: int = Field(10, ge=1, le=MAX_RECOMMEND_K, description="Answers to return.")
    candidates: int = Field(100, ge=1, le=MAX_RANK_CANDIDATES, description="Retrieved candidates to rerank.")

    @model_validator(mode="after")
    def _enough_candidates(self) -> RecommendRequest:
        if self.candidates < self.k:
            raise ValueError("'candidates' must be at least 'k'")
        return self


class Recommendation(BaseModel):
    id: str
    text: str
    score: float = Field(description="Final score: reranker score, or retrieval score when not reranked.")
    retrieval_rank: int
    retrieval_score: float


class RecommendResponse(BaseModel):
    question: str
    artifact_version: str
    reranked: bool
    degraded_reason: str | None = Field(None, description="Why reranking was skipped, when it was.")
    answers: list[Recommendation]
    timings_ms: dict[str, float]


# --- shared ----------------------------------------------------------------------------------


class ValidationIssue(BaseModel):
    """One problem with a request, as FastAPI reports it (`input` and `ctx` may follow)."""

    loc: list[str | int] = Field(description="Where: e.g. [\"body\", \"question\"].")
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every error: a message, or (for a malformed request) the list of problems with it."""

    detail: str | list[ValidationIssue]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    artifact_version: str | None = None
    detail: str | None = None


class ReloadResponse(BaseModel):
    status: Literal["reloaded", "unchanged"] = Field(
        description="'reloaded': a new bundle is served now; 'unchanged': CURRENT names the served one."
    )
    artifact_version: str = Field(description="The version served from now on.")
    previous_version: str
