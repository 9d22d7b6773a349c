"""Ranking service app: `uvicorn ranking_service.main:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from common.logs import setup_logging
from common.model_app import create_model_app, set_tf_threads
from ranking_service.api import router
from ranking_service.config import RankingSettings


def create_app(settings: RankingSettings | None = None) -> FastAPI:
    """Build the app; refuses to start (SystemExit with a one-line reason) on a bad bundle."""
    settings = settings or RankingSettings()

    def start():
        set_tf_threads(settings.tf_threads)
        from ranking_service.ranker import Ranker, rank_batch

        def load(path: Path) -> Ranker:
            ranker = Ranker.load(path, verify_checksums=settings.verify_checksums)
            ranker.warm_up()
            return ranker

        return load, rank_batch

    return create_model_app(
        name="ranking",
        description="Stage 2: rerank retrieved answer candidates with a Keras model.",
        settings=settings,
        router=router,
        start=start,
    )


def main() -> None:
    import uvicorn

    setup_logging()
    settings = RankingSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
