"""Ranking service app: `uvicorn ranking_service.main:create_app --factory`."""

from __future__ import annotations

import asyncio
import logging
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
from ranking_service.config import RankingSettings

logger = logging.getLogger(__name__)


def configure_threads(tf_threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, tf_threads))
    except RuntimeError:  # already initialised in this process (tests create several apps)
        pass


def create_app(settings: RankingSettings | None = None) -> FastAPI:
    """Build the app; refuses to start (SystemExit with a one-line reason) on a bad bundle."""
    settings = settings or RankingSettings()
    try:
        bundle = mf.resolve_bundle(settings.artifacts_dir)
        mf.load_manifest(bundle, verify_hashes=False)
    except mf.ArtifactError as exc:
        raise SystemExit(f"ranking service cannot start: {exc}") from None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        configure_threads(settings.tf_threads)
        from ranking_service.ranker import Ranker, rank_batch

        def load(path: Path) -> Ranker:
            ranker = Ranker.load(path, verify_checksums=settings.verify_checksums)
            ranker.warm_up()
            return ranker

        slot = ArtifactSlot(settings.artifacts_dir, load, name="ranking")
        try:
            slot.load_initial(bundle)
        except mf.ArtifactError as exc:
            raise StartupError(f"ranking service cannot start: {exc}") from None
        # A batch takes the served ranker once: one batch, one artifact version, even mid-reload.
        batcher = MicroBatcher(
            lambda queries: rank_batch(slot.current.value, queries),
            max_size=settings.batch_max_size,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            name="ranking-batch",
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

    app = FastAPI(title="Ranking service", version="1.0.0", lifespan=lifespan,
                  description="Stage 2: rerank retrieved answer candidates with a Keras model.")
    app.state.artifacts = app.state.batcher = None
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    from ranking_service.api import router

    app.include_router(router)
    app.include_router(admin_router)
    return app


def main() -> None:
    import uvicorn

    setup_logging()
    settings = RankingSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
