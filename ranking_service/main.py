"""Ranking service app: `uvicorn ranking_service.main:create_app --factory`."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from common import manifest as mf
from common.errors import StartupError, install_error_handlers
from common.logs import setup_logging
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
        from ranking_service.ranker import Ranker

        try:
            ranker = Ranker.load(bundle, verify_checksums=settings.verify_checksums)
        except mf.ArtifactError as exc:
            raise StartupError(f"ranking service cannot start: {exc}") from None
        ranker.warm_up()
        app.state.ranker = ranker
        yield
        app.state.ranker = None

    app = FastAPI(title="Ranking service", version="1", lifespan=lifespan,
                  description="Stage 2: rerank retrieved answer candidates with a Keras model.")
    app.state.ranker = None
    app.state.settings = settings
    install_error_handlers(app)
    from ranking_service.api import router

    app.include_router(router)
    return app


def main() -> None:
    import uvicorn

    setup_logging()
    settings = RankingSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
