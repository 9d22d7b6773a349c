"""HTTP endpoints: `POST /v1/recommend`, `GET /healthz`, `GET /readyz`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from common.errors import ERROR_RESPONSES, Utf8BodyRoute
from common.schemas import Health, Readiness, RecommendRequest, RecommendResponse
from gateway import pipeline
from gateway.clients import ServiceClient, UpstreamError
from gateway.dependencies import RankingDep, RetrievalDep

router = APIRouter(route_class=Utf8BodyRoute, responses=ERROR_RESPONSES)


@router.post("/v1/recommend", response_model=RecommendResponse)
async def recommend(req: RecommendRequest, retrieval: RetrievalDep, ranking: RankingDep) -> RecommendResponse:
    """Recommend answers to a question: retrieve candidates, rerank them, return the best k."""
    return await pipeline.recommend(req, retrieval, ranking)


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(response: Response, retrieval: RetrievalDep, ranking: RankingDep) -> Readiness:
    """Readiness: 200 when retrieval is ready (ranking is optional; its state is in `detail`)."""
    retrieval_state, ranking_state = await asyncio.gather(_state(retrieval), _state(ranking))
    detail = f"retrieval: {_describe(retrieval_state)}; ranking: {_describe(ranking_state)}"
    if retrieval_state.status != "ready":
        response.status_code = 503
        return Readiness(status="not ready", detail=detail)
    return Readiness(status="ready", artifact_version=retrieval_state.artifact_version, detail=detail)


async def _state(client: ServiceClient) -> Readiness:
    try:
        return await client.ready()
    except UpstreamError as exc:
        return Readiness(status="not ready", detail=exc.message)


def _describe(state: Readiness) -> str:
    parts = [state.status]
    if state.artifact_version:
        parts.append(f"artifact {state.artifact_version}")
    if state.detail:
        parts.append(f"({state.detail})")
    return " ".join(parts)
