"""Retrieval service app: `uvicorn retrieval_service.main:create_app --factory`."""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

from common import manifest as mf
from common.errors import StartupError, install_error_handlers
from common.logs import setup_logging
from retrieval_service.config import RetrievalSettings

logger = logging.getLogger(__name__)


def configure_threads(tf_threads: int, faiss_threads: int) -> None:
    """Set thread budgets before any TensorFlow op runs (they cannot change afterwards)."""
    import tensorflow as tf

    from retrieval_service.index import set_threads

    try:
        tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, tf_threads))
    except RuntimeError:  # already initialised in this process (tests create several apps)
        pass
    set_threads(faiss_threads)


def create_app(settings: RetrievalSettings | None = None) -> FastAPI:
    """Build the app; refuses to start (SystemExit with a one-line reason) on a bad bundle."""
    settings = settings or RetrievalSettings()
    try:
        bundle = mf.resolve_bundle(settings.artifacts_dir)
        mf.load_manifest(bundle, verify_hashes=False)
    except mf.ArtifactError as exc:
        raise SystemExit(f"retrieval service cannot start: {exc}") from None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        configure_threads(settings.tf_threads, settings.faiss_threads)
        from retrieval_service.retriever import Retriever

        try:
            retriever = Retriever.load(bundle, verify_checksums=settings.verify_checksums)
        except mf.ArtifactError as exc:
            raise StartupError(f"retrieval service cannot start: {exc}") from None
        retriever.warm_up()
        app.state.retriever = retriever
        yield
        app.state.retriever = None

    app = FastAPI(title="Retrieval service", version="1", lifespan=lifespan,
                  description="Stage 1: dense retrieval of answer candidates for a question.")
    app.state.retriever = None
    app.state.settings = settings
    install_error_handlers(app)
    from retrieval_service.api import router

    app.include_router(router)
    return app


def main() -> None:
    import uvicorn

    setup_logging()
    settings = RetrievalSettings()
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.faiss_threads))
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
