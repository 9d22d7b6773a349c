"""Typed async HTTP clients for the retrieval and ranking services, and the errors they raise.

Every failure of a call to another service surfaces as one of these exceptions (never a raw
httpx error), so the pipeline and the app's handlers deal with exactly three cases:

    UpstreamError            base class; `stage` ("retrieval" / "ranking") and a short `message`
    ├── UpstreamTimeout      no complete response within the call's budget        -> 504
    ├── UpstreamUnavailable  could not connect, or the connection broke           -> 503
    └── UpstreamFailed       5xx, an unexpected 4xx, or a body that doesn't parse -> 502

`str(error)` is a human sentence such as "ranking service timed out after 2.0 s".
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from common.schemas import (
    AnswersRequest,
    AnswersResponse,
    RankRequest,
    RankResponse,
    Readiness,
    RetrieveRequest,
    RetrieveResponse,
)
from gateway.transport import PooledTransport

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
_MAX_DETAIL_CHARS = 200
_JSON_HEADERS = {"content-type": "application/json"}


class UpstreamError(Exception):
    """A call to another service failed; see the module docstring for the subclasses."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage} service {message}")
        self.stage = stage
        self.message = message


class UpstreamTimeout(UpstreamError):
    """The service did not answer within `timeout_s`."""

    def __init__(self, stage: str, timeout_s: float) -> None:
        super().__init__(stage, f"timed out after {timeout_s} s")
        self.timeout_s = timeout_s


class UpstreamUnavailable(UpstreamError):
    """Transport failure: connection refused or timed out (after retries), or dropped mid-call."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(stage, f"unavailable: {reason}")


class UpstreamFailed(UpstreamError):
    """The service answered, but with an error status or a body that breaks the contract."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(stage, f"failed: {reason}")


class ServiceClient:
    """One long-lived `httpx.AsyncClient` for one service, with a whole-call deadline.

    Args:
        base_url: the service's root URL.
        timeout_s: budget for a whole call, connect retries included.
        connect_timeout_s: budget for opening one connection.
        max_connections: connection pool size.
        max_keepalive: idle connections kept open (below the concurrency, connections are closed and
            reopened all the time).
        retries: extra attempts after a connect error (nothing was sent, so it is always safe).
        transport: replaces the network (tests pass `httpx.MockTransport`); default: `PooledTransport`
            for http:// URLs, httpx's own for https://.
    """

    stage: ClassVar[str] = "upstream"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        connect_timeout_s: float = 1.0,
        max_connections: int = 100,
        max_keepalive: int = 100,
        retries: int = 1,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if transport is None:
            # Plain http between services: the lean pooled transport (a fraction of httpcore's CPU per
            # call); anything else (https) goes through httpx's own.
            if httpx.URL(base_url).scheme == "http":
                transport = PooledTransport(max_connections=max_connections, max_keepalive=max_keepalive)
            else:
                limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive)
                transport = httpx.AsyncHTTPTransport(limits=limits)
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.retries = retries
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ready(self) -> Readiness:
        """The service's `/readyz`; a non-200 answer becomes `status="not ready"` (errors still raise)."""
        response = await self._send("GET", "/readyz")
        if response.status_code == 200:
            return self._parse(response, Readiness)
        return Readiness(status="not ready", detail=f"HTTP {response.status_code}: {_detail(response)}")

    async def _post(self, path: str, body: BaseModel, model: type[ModelT]) -> ModelT:
        # Serialised by pydantic-core in one pass (json.dumps of model_dump() costs ~8x more for a
        # 100-candidate rank request).
        content = body.model_dump_json(exclude_none=True).encode()
        response = await self._send("POST", path, content)
        if response.status_code != 200:
            raise UpstreamFailed(self.stage, f"HTTP {response.status_code} from {path}: {_detail(response)}")
        return self._parse(response, model)

    async def _send(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._send_with_retries(method, path, content)
        except _CONNECT_ERRORS as exc:
            raise UpstreamUnavailable(self.stage, f"cannot connect to {self.base_url} ({_describe(exc)})") from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeout(self.stage, self.timeout_s) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(self.stage, f"{_describe(exc)} from {self.base_url}") from exc
        except httpx.DecodingError as exc:
            raise UpstreamFailed(self.stage, f"undecodable response body ({_describe(exc)})") from exc

    async def _send_with_retries(self, method: str, path: str, content: bytes | None) -> httpx.Response:
        headers = _JSON_HEADERS if content is not None else None
        for attempt in range(self.retries + 1):
            try:
                return await self._http.request(method, path, content=content, headers=headers)
            except _CONNECT_ERRORS as exc:
                if attempt == self.retries:
                    raise
                logger.debug("%s: %s, retrying (%d/%d)", self.stage, _describe(exc), attempt + 1, self.retries)
        raise AssertionError("unreachable")

    def _parse(self, response: httpx.Response, model: type[ModelT]) -> ModelT:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            path = response.request.url.path
            raise UpstreamFailed(self.stage, f"unexpected response from {path} ({exc.error_count()} errors)") from exc


class RetrievalClient(ServiceClient):
    """Stage 1: dense retrieval of candidate answers, and the answer store."""

    stage = "retrieval"

    async def retrieve(
        self, question: str, k: int, include_text: bool = False, include_embedding: bool = False
    ) -> RetrieveResponse:
        request = RetrieveRequest(
            question=question, k=k, include_text=include_text, include_embedding=include_embedding,
            # Compact: the gateway hands it to ranking as an opaque string, nobody formats or parses floats.
            embedding_format="base64" if include_embedding else "list",
        )
        response = await self._post("/v1/retrieve", request, RetrieveResponse)
        if len(response.results) != 1:
            raise UpstreamFailed(self.stage, f"expected 1 result, got {len(response.results)}")
        return response

    async def answers(self, ids: list[str]) -> AnswersResponse:
        """Texts (and votes) for answer ids."""
        return await self._post("/v1/answers", AnswersRequest(ids=ids), AnswersResponse)


class RankingClient(ServiceClient):
    """Stage 2: rerank retrieved candidates."""

    stage = "ranking"

    async def rank(self, request: RankRequest) -> RankResponse:
        return await self._post("/v1/rank", request, RankResponse)


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _detail(response: httpx.Response) -> str:
    """The upstream's `detail` (or body), shortened: enough to diagnose, never a whole payload."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    text = str(detail) or response.reason_phrase
    return text if len(text) <= _MAX_DETAIL_CHARS else text[:_MAX_DETAIL_CHARS] + "..."
