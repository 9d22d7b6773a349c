"""Gateway app factory: `uvicorn gateway.main:create_app --factory` or `python -m gateway.main`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from common.errors import install_error_handlers
from common.limits import BodySizeLimit
from common.logs import setup_logging
from gateway.api import router
from gateway.clients import (
    RankingClient,
    RetrievalClient,
    UpstreamError,
    UpstreamFailed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.config import GatewaySettings

logger = logging.getLogger(__name__)

UPSTREAM_STATUS: dict[type[UpstreamError], int] = {
    UpstreamTimeout: 504,
    UpstreamUnavailable: 503,
    UpstreamFailed: 502,
}


def create_app(
    settings: GatewaySettings | None = None,
    *,
    retrieval_transport: httpx.AsyncBaseTransport | None = None,
    ranking_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the gateway; the transports replace the network in tests (`httpx.MockTransport`)."""
    # With `uvicorn --factory` this is the entry point, so logging is configured here (idempotent).
    setup_logging()
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        shared = {
            "connect_timeout_s": settings.connect_timeout_s,
            "max_connections": settings.max_connections,
            "max_keepalive": settings.max_keepalive,
            "retries": settings.retries,
        }
        app.state.retrieval = RetrievalClient(
            str(settings.retrieval_url), timeout_s=settings.retrieval_timeout_s, transport=retrieval_transport, **shared
        )
        app.state.ranking = RankingClient(
            str(settings.ranking_url), timeout_s=settings.ranking_timeout_s, transport=ranking_transport, **shared
        )
        logger.info("gateway up: retrieval at %s, ranking at %s", settings.retrieval_url, settings.ranking_url)
        try:
            yield
        finally:
            await app.state.retrieval.aclose()
            await app.state.ranking.aclose()

    app = FastAPI(title="Answer recommender gateway", version="1.0.0", lifespan=lifespan)
    app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_exception_handler(UpstreamError, upstream_error_handler)
    return app


async def upstream_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A required stage failed: 504 timeout, 503 unreachable, 502 bad answer."""
    status = next((code for kind, code in UPSTREAM_STATUS.items() if isinstance(exc, kind)), 502)
    return JSONResponse(status_code=status, content={"detail": str(exc)})


def main() -> None:
    """Run the gateway with uvicorn on the configured host and port."""
    import uvicorn

    settings = GatewaySettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
