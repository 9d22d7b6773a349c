"""FastAPI dependency aliases for the retrieval service."""

from typing import Annotated

from fastapi import Depends, Request

from common.batching import MicroBatcher
from common.errors import NotReady
from retrieval_service.retriever import Hits, Query, Retriever

LOADING = "retrieval service is still loading its artifacts"


def get_retriever(request: Request) -> Retriever:
    """The retriever served now: a snapshot, so a reload during the request does not change it."""
    slot = getattr(request.app.state, "artifacts", None)
    if slot is None or not slot.loaded:
        raise NotReady(LOADING)
    return slot.current.value


# `async def`: FastAPI would run a plain `def` dependency in its threadpool, a thread hop per request.
async def get_batcher(request: Request) -> MicroBatcher[Query, Hits]:
    batcher = getattr(request.app.state, "batcher", None)
    if batcher is None:
        raise NotReady(LOADING)
    return batcher


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
BatcherDep = Annotated[MicroBatcher[Query, Hits], Depends(get_batcher)]
