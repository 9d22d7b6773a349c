"""One error shape for every service: `{"detail": ...}`, with domain errors mapped to HTTP once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A domain error with the HTTP status it should become."""

    status_code = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotReady(ServiceError):
    status_code = 503


class InvalidInput(ServiceError):
    status_code = 422


class VersionMismatch(ServiceError):
    status_code = 409


class StartupError(SystemExit, Exception):
    """A service cannot start (bad artifact bundle); the message is one line saying why and what to run.

    A `SystemExit`, so the process exits with that message. Also an `Exception`, so when raised in a
    lifespan it reaches the caller unchanged: anyio (under Starlette's TestClient) re-raises any
    other `BaseException` inside its event loop, which surfaces as a bare `CancelledError`.
    """


class Utf8BodyRoute(APIRoute):
    """An `APIRoute` that rejects a body that isn't UTF-8 with a 422 naming the body.

    FastAPI answers 400 (JSON content type) or 500 (other content types) for such a body; every
    other malformed body is already a 422.
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            body = await request.body()  # cached on the request, so the handler reads it again for free
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                error = {
                    "type": "unicode_decode",
                    "loc": ("body", exc.start),
                    "msg": "Body is not valid UTF-8",
                    "input": {},
                    "ctx": {"error": exc.reason},
                }
                raise RequestValidationError([error]) from exc
            return await handler(request)

        return route_handler


async def service_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape, made safe for undecodable bytes and exception objects in the errors."""
    assert isinstance(exc, RequestValidationError)
    safe = {bytes: lambda b: b.decode("utf-8", "replace"), Exception: str}
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(exc.errors(), custom_encoder=safe)})


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything else: log it with its traceback, tell the client nothing internal."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "internal error"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
