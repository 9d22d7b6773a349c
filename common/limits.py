"""Request body size limit: a pure ASGI middleware that answers 413 before anything parses the body.

Every service adds it in `create_app` with its own limit (`RETRIEVAL_MAX_BODY_BYTES`,
`RANKING_MAX_BODY_BYTES`, `GATEWAY_MAX_BODY_BYTES`)::

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Defaults: a request at every maximum of the wire contract fits with room to spare. The largest
# is a rank request (1000 candidates with 200-character ids, a 384-float embedding, a 2000-character
# question: about 0.3 MB); a gateway request is one question and two integers (at most ~25 kB).
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_GATEWAY_MAX_BODY_BYTES = 64 << 10


class BodyTooLarge(Exception):
    """Raised from `receive` when a streamed body passes the limit; the middleware answers 413."""


class BodySizeLimit:
    """Refuse a request body over `max_bytes` with 413 and `{"detail": ...}`.

    A declared Content-Length over the limit is refused before the app runs, without reading the
    body. A body without one (chunked), or longer than it declared, is counted as it streams in and
    refused as soon as it passes the limit; whatever the app then tries to answer is replaced by the 413.

    Args:
        app: the ASGI app to protect.
        max_bytes: the largest body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.strip().isdigit()):
                await _error(send, 400, f"invalid Content-Length header: {declared[:40]!r}")
                return
            if int(declared) > self.max_bytes:
                await _error(send, 413, self._too_large())
                return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(self._too_large())
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a failed read (a 400 or 500) gives way to the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # Whatever the app (or a task group around it) made of BodyTooLarge, it means the same.
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _error(send, 413, self._too_large())

    def _too_large(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes"


async def _error(send: Send, status: int, detail: str) -> None:
    """Answer without reading the body; `connection: close` so the server does not wait for the rest of it."""
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()  # as JSONResponse writes it
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
