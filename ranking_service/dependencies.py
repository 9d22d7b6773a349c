"""FastAPI dependency aliases for the ranking service."""

from typing import Annotated

from fastapi import Depends, Request

from common.errors import NotReady
from ranking_service.ranker import Ranker


def get_ranker(request: Request) -> Ranker:
    ranker = getattr(request.app.state, "ranker", None)
    if ranker is None:
        raise NotReady("ranking service is still loading its artifacts")
    return ranker


RankerDep = Annotated[Ranker, Depends(get_ranker)]
