"""Retrieval service app: `uvicorn retrieval_service.main:create_app --factory`."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from common import manifest as mf
from common.admin import router as admin_router
from common.batching import MicroBatcher
from common.errors import StartupError, install_error_handlers
from common.limits import BodySizeLimit
from common.logs import setup_logging
from common.reloading import ArtifactSlot
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
        from retrieval_service.retriever import Retriever, retrieve_batch

        def load(path: Path) -> Retriever:
            retriever = Retriever.load(path, verify_checksums=settings.verify_checksums)
            retriever.warm_up()
            return retriever

        slot = ArtifactSlot(settings.artifacts_dir, load, name="retrieval")
        try:
            slot.load_initial(bundle)
        except mf.ArtifactError as exc:
            raise StartupError(f"retrieval service cannot start: {exc}") from None
        # A batch takes the served retriever once: one batch, one artifact version, even mid-reload.
        batcher = MicroBatcher(
            lambda queries: retrieve_batch(slot.current.value, queries),
            max_size=settings.batch_max_size,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            name="retrieval-batch",
            weight=lambda query: len(query.questions),
        )
        batcher.start()
        watcher = asyncio.create_task(slot.watch(settings.reload_poll_s)) if settings.reload_poll_s > 0 else None
        app.state.artifacts, app.state.batcher = slot, batcher
        try:
            yield
        finally:
            app.state.artifacts = app.state.batcher = None
            if watcher is not None:
                watcher.cancel()
            await batcher.aclose()

    app = FastAPI(title="Retrieval service", version="1.0.0", lifespan=lifespan,
                  description="Stage 1: dense retrieval of answer candidates for a question.")
    app.state.artifacts = app.state.batcher = None
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    from retrieval_service.api import router

    app.include_router(router)
    app.include_router(admin_router)
    return app


def main() -> None:
    import uvicorn

    setup_logging()
    settings = RetrievalSettings()
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.faiss_threads))
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
