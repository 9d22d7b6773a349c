"""HTTP endpoints of the ranking service."""

from fastapi import APIRouter

from common.errors import ERROR_RESPONSES, InvalidInput, Utf8BodyRoute
from common.schemas import RankedAnswer, RankRequest, RankResponse
from ranking_service.dependencies import BatcherDep
from ranking_service.ranker import RankQuery

router = APIRouter(route_class=Utf8BodyRoute, responses=ERROR_RESPONSES)


@router.post(
    "/v1/rank",
    response_model=RankResponse,
    responses={409: {"description": "artifact_version differs from the served one"}},
)
async def rank(body: RankRequest, batcher: BatcherDep) -> RankResponse:
    """Rescore candidate answers for a question with the reranker; best first."""
    ids = [c.id for c in body.candidates]
    if len(set(ids)) != len(ids):
        raise InvalidInput("candidate ids must be unique")
    # Checks against the bundle (version, ids, embedding) and the model call run in the batcher's
    # thread, on the ranker that serves the batch; its errors come back for this request alone.
    query = RankQuery(body.question, ids, body.embedding(), body.artifact_version)
    r = await batcher.submit(query)
    top = r.order[: body.top_k] if body.top_k else r.order
    store = r.ranker.store  # the version that ranked it, even if a reload swapped it since
    return RankResponse(
        artifact_version=r.ranker.manifest.artifact_version,
        candidates=[
            RankedAnswer(
                id=ids[i],
                score=float(r.scores[i]),
                rank=position,
                retrieval_score=float(r.dense[i]),
                retrieval_rank=int(r.dense_rank[i]),
                text=store.texts[r.rows[i]] if body.include_text else None,
            )
            for position, i in enumerate(top, start=1)
        ],
    )

