"""FastAPI dependency aliases for the ranking service."""

from typing import Annotated

from fastapi import Depends, Request

from common.batching import MicroBatcher
from common.errors import NotReady
from ranking_service.ranker import Ranking, RankQuery

LOADING = "ranking service is still loading its artifacts"


# `async def`: FastAPI would run a plain `def` dependency in its threadpool, a thread hop per request.
async def get_batcher(request: Request) -> MicroBatcher[RankQuery, Ranking]:
    batcher = getattr(request.app.state, "batcher", None)
    if batcher is None:
        raise NotReady(LOADING)
    return batcher


BatcherDep = Annotated[MicroBatcher[RankQuery, Ranking], Depends(get_batcher)]
