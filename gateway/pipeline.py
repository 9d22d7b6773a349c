"""The recommend pipeline: retrieve, rerank, and the degradation policy when reranking fails.

Policy:
- Retrieval is required: its `UpstreamError` propagates (the app maps it to 502/503/504).
- Ranking is optional: if it raises an `UpstreamError`, or answers for a different artifact
  version than retrieval (answers from mismatched versions are never merged), the response is the
  retrieval top k in retrieval order with retrieval scores, `reranked=False` and a
  `degraded_reason`. Texts then come from retrieval's answer store.
"""

from __future__ import annotations

import logging
import time

from common.schemas import (
    RankRequest,
    RecommendRequest,
    RecommendResponse,
    Recommendation,
    RetrievalResult,
    RetrievedAnswer,
)
from gateway.clients import RankingClient, RetrievalClient, UpstreamError, UpstreamFailed

logger = logging.getLogger(__name__)


class RankingSkipped(Exception):
    """Internal: the ranking stage's answer can't be used; the message is the degraded reason."""


async def recommend(req: RecommendRequest, retrieval: RetrievalClient, ranking: RankingClient) -> RecommendResponse:
    """Answer `req`: retrieve `req.candidates`, rerank them to the best `req.k`, degrade if ranking fails.

    Raises:
        UpstreamError: from the retrieval stage.
    """
    started = time.perf_counter()
    try:
        retrieved = await retrieval.retrieve(
            req.question, k=req.candidates, include_text=False, include_embedding=True
        )
    except UpstreamError as exc:
        logger.warning("retrieval failed after %.1f ms: %s", _ms_since(started), exc)
        raise
    version = retrieved.artifact_version
    result = retrieved.results[0]
    timings = {"retrieve": _ms_since(started)}

    rank_started = time.perf_counter()
    try:
        answers = await _rerank(req, result, version, ranking)
        reranked, reason = True, None
    except RankingSkipped as exc:
        reranked, reason = False, str(exc)
        timings["rank"] = _ms_since(rank_started)
        logger.warning("serving retrieval order (ranking gave up after %.1f ms): %s", timings["rank"], reason)
        answers, version = await _retrieval_order(req, result, version, retrieval, timings)
    timings.setdefault("rank", _ms_since(rank_started))
    timings["total"] = _ms_since(started)
    return RecommendResponse(
        question=req.question,
        artifact_version=version,
        reranked=reranked,
        degraded_reason=reason,
        answers=answers,
        timings_ms=timings,
    )


async def _rerank(
    req: RecommendRequest, result: RetrievalResult, version: str, ranking: RankingClient
) -> list[Recommendation]:
    """The ranking stage's top k, or `RankingSkipped` saying why it can't be used."""
    if not result.candidates:
        raise RankingSkipped("retrieval returned no candidates")
    request = RankRequest(
        question=req.question,
        # Plain dicts: pydantic-core validates them into RankCandidate faster than Python builds them.
        candidates=[{"id": c.id, "retrieval_score": c.score} for c in result.candidates],
        question_embedding=result.embedding,
        question_embedding_b64=result.embedding_b64,
        top_k=req.k,
        include_text=True,
        artifact_version=version,
    )
    try:
        ranked = await ranking.rank(request)
    except UpstreamError as exc:
        raise RankingSkipped(str(exc)) from exc
    if ranked.artifact_version != version:
        raise RankingSkipped(
            f"ranking service serves artifact version {ranked.artifact_version!r}, retrieval serves {version!r}"
        )
    # Retrieval positions and scores come from our own copy: the source of truth for stage 1.
    by_id: dict[str, RetrievedAnswer] = {c.id: c for c in result.candidates}
    answers = []
    for answer in ranked.candidates[: req.k]:
        candidate = by_id.get(answer.id)
        if candidate is None or answer.text is None:
            raise RankingSkipped(f"ranking service returned an unknown or textless answer {answer.id!r}")
        answers.append(
            Recommendation(
                id=answer.id,
                text=answer.text,
                score=answer.score,
                retrieval_rank=candidate.rank,
                retrieval_score=candidate.score,
            )
        )
    return answers


async def _retrieval_order(
    req: RecommendRequest,
    result: RetrievalResult,
    version: str,
    retrieval: RetrievalClient,
    timings: dict[str, float],
) -> tuple[list[Recommendation], str]:
    """The retrieval top k as recommendations, with texts from retrieval's answer store, and the
    artifact version they all come from."""
    top = sorted(result.candidates, key=lambda c: c.rank)[: req.k]
    if not top:
        return [], version
    started = time.perf_counter()
    try:
        store = await retrieval.answers([c.id for c in top])
        if store.artifact_version == version:
            texts = {a.id: a.text for a in store.answers}
        else:
            # Retrieval swapped artifact versions (a hot reload) between the two calls. Never mix
            # them: take the new version's top k, texts included, from one call.
            logger.info(
                "retrieval moved from artifact %s to %s mid-request; retrieving again", version, store.artifact_version
            )
            fresh = await retrieval.retrieve(req.question, k=req.k, include_text=True)
            version, top = fresh.artifact_version, sorted(fresh.results[0].candidates, key=lambda c: c.rank)[: req.k]
            texts = {c.id: c.text for c in top if c.text is not None}
        missing = [c.id for c in top if c.id not in texts]
        if missing:
            raise UpstreamFailed("retrieval", f"no text for {len(missing)} answer ids, e.g. {missing[0]!r}")
    except UpstreamError as exc:
        logger.warning("fetching answer texts failed after %.1f ms: %s", _ms_since(started), exc)
        raise
    finally:
        timings["answers"] = _ms_since(started)
    return [
        Recommendation(id=c.id, text=texts[c.id], score=c.score, retrieval_rank=c.rank, retrieval_score=c.score)
        for c in top
    ], version


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
