"""One error shape for every service: `{"detail": ...}`, with domain errors mapped to HTTP once."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from common.schemas import ErrorResponse

logger = logging.getLogger(__name__)

# What a malformed request gets, documented on every route of a service's router
# (`APIRouter(responses=ERROR_RESPONSES)`), so clients and the fuzz tests know these answers.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Body JSON that cannot be parsed here (e.g. nested too deeply)"},
    413: {"model": ErrorResponse, "description": "Request body over the service's size limit"},
    422: {"model": ErrorResponse, "description": "Malformed request (a list of problems) or bad values (a message)"},
}


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


class ReloadRefused(ServiceError):
    """A new artifact bundle failed to load; the service keeps serving the old one."""

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


def _encodable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# What a request can smuggle into an error message that JSON cannot carry: undecodable bytes, lone
# surrogates ("\ud800" is valid JSON, not encodable UTF-8), NaN and Infinity (Python's parser accepts
# them, strict JSON does not), exception objects.
_JSON_SAFE: dict[Any, Callable[[Any], Any]] = {
    bytes: lambda b: b.decode("utf-8", "replace"),
    str: _encodable,
    float: lambda x: x if math.isfinite(x) else str(x),
    Exception: lambda exc: _encodable(str(exc)),
}


def _safe(detail: Any) -> Any:
    return jsonable_encoder(detail, custom_encoder=_JSON_SAFE)


async def service_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse({"detail": _safe(exc.detail)}, status_code=exc.status_code)


MAX_ECHOED_INPUT = 200  # characters of a rejected string sent back in the error (a 2000+ one is noise)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape, made safe for whatever the request put into the errors (see `_JSON_SAFE`)."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": _safe([_shorten(e) for e in exc.errors()])})


def _shorten(error: dict[str, Any]) -> dict[str, Any]:
    value = error.get("input")
    if isinstance(value, str) and len(value) > MAX_ECHOED_INPUT:
        return {**error, "input": value[:MAX_ECHOED_INPUT] + f"... ({len(value)} characters)"}
    return error


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything else: log it with its traceback, tell the client nothing internal."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "internal error"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
