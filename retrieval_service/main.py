"""Retrieval service app: `uvicorn retrieval_service.main:create_app --factory`."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from common.logs import setup_logging
from common.model_app import create_model_app, set_tf_threads
from retrieval_service.api import router
from retrieval_service.config import RetrievalSettings


def create_app(settings: RetrievalSettings | None = None) -> FastAPI:
    """Build the app; refuses to start (SystemExit with a one-line reason) on a bad bundle."""
    settings = settings or RetrievalSettings()

    def start():
        set_tf_threads(settings.tf_threads)
        from retrieval_service.index import set_threads
        from retrieval_service.retriever import Retriever, retrieve_batch

        set_threads(settings.faiss_threads)

        def load(path: Path) -> Retriever:
            retriever = Retriever.load(path, verify_checksums=settings.verify_checksums)
            retriever.warm_up()
            return retriever

        return load, retrieve_batch

    return create_model_app(
        name="retrieval",
        description="Stage 1: dense retrieval of answer candidates for a question.",
        settings=settings,
        router=router,
        start=start,
        weight=lambda query: len(query.questions),
    )


def main() -> None:
    import uvicorn

    setup_logging()
    settings = RetrievalSettings()
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.faiss_threads))
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
