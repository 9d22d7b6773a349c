"""`Annotated` dependency aliases for the upstream clients the lifespan puts on `app.state`."""

from typing import Annotated

from fastapi import Depends, Request

from gateway.clients import RankingClient, RetrievalClient


# `async def`: FastAPI runs a plain `def` dependency in its threadpool, a thread hop per request.
async def get_retrieval(request: Request) -> RetrievalClient:
    return request.app.state.retrieval


async def get_ranking(request: Request) -> RankingClient:
    return request.app.state.ranking


RetrievalDep = Annotated[RetrievalClient, Depends(get_retrieval)]
RankingDep = Annotated[RankingClient, Depends(get_ranking)]
