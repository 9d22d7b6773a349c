"""FastAPI dependency aliases for the retrieval service."""

from typing import Annotated

from fastapi import Depends, Request

from common.errors import NotReady
from retrieval_service.retriever import Retriever


def get_retriever(request: Request) -> Retriever:
    retriever = getattr(request.app.state, "retriever", None)
    if retriever is None:
        raise NotReady("retrieval service is still loading its artifacts")
    return retriever


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
