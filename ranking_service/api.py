"""HTTP endpoints of the ranking service."""

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from common.errors import InvalidInput, Utf8BodyRoute, VersionMismatch
from common.schemas import Health, RankedAnswer, RankRequest, RankResponse, Readiness
from ranking_service.dependencies import RankerDep

router = APIRouter(route_class=Utf8BodyRoute)


@router.post(
    "/v1/rank",
    response_model=RankResponse,
    responses={409: {"description": "artifact_version differs from the served one"}},
)
def rank(body: RankRequest, ranker: RankerDep) -> RankResponse:
    """Rescore candidate answers for a question with the reranker; best first."""
    served = ranker.manifest.artifact_version
    if body.artifact_version is not None and body.artifact_version != served:
        raise VersionMismatch(f"request is for artifact version {body.artifact_version}, this service serves {served}")
    ids = [c.id for c in body.candidates]
    if len(set(ids)) != len(ids):
        raise InvalidInput("candidate ids must be unique")
    rows, unknown = ranker.store.rows(ids)
    if unknown:
        raise InvalidInput(f"unknown candidate ids: {', '.join(unknown[:20])}" + (" ..." if len(unknown) > 20 else ""))
    embedding = None
    if body.question_embedding is not None:
        if len(body.question_embedding) != ranker.dim:
            raise InvalidInput(f"question_embedding has {len(body.question_embedding)} values, expected {ranker.dim}")
        embedding = np.asarray(body.question_embedding, dtype=np.float32)
        if not np.isfinite(embedding).all() or not 0.5 < float(np.linalg.norm(embedding)) < 1.5:
            raise InvalidInput("question_embedding must be a finite, L2-normalised vector")
    order, scores, dense, dense_rank = ranker.rank(body.question, rows, embedding)
    top = order[: body.top_k] if body.top_k else order
    store = ranker.store
    return RankResponse(
        artifact_version=served,
        candidates=[
            RankedAnswer(
                id=ids[i],
                score=float(scores[i]),
                rank=position,
                retrieval_score=float(dense[i]),
                retrieval_rank=int(dense_rank[i]),
                text=store.texts[rows[i]] if body.include_text else None,
            )
            for position, i in enumerate(top, start=1)
        ],
    )


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(request: Request):
    """Artifacts are loaded and the model is warmed up."""
    ranker = getattr(request.app.state, "ranker", None)
    if ranker is None:
        return JSONResponse(Readiness(status="loading").model_dump(), status_code=503)
    return Readiness(status="ready", artifact_version=ranker.manifest.artifact_version)
