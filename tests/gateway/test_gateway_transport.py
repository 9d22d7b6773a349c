"""The gateway's pooled HTTP/1.1 transport against a scripted server on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.transport import PooledTransport

pytestmark = pytest.mark.anyio

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"
Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """Reads one request at a time from each connection and answers it with `reply(request, writer)`."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
                    0,
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.reply(request, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(reply: Reply) -> AsyncIterator[tuple[Server, str]]:
    server = Server(reply)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listener.close()


@asynccontextmanager
async def client(base_url: str, timeout: httpx.Timeout | float = 5.0, **limits: int) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=PooledTransport(**limits)) as http:
        yield http


async def answer_ok(request: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(OK)
    await writer.drain()


async def test_posts_the_body_and_reads_the_response() -> None:
    async with serving(answer_ok) as (server, url), client(url) as http:
        response = await http.post("/v1/rank?x=1", content=b'{"q":1}', headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["content-type"] == "application/json"
    [request] = server.requests
    head, body = request.split(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /v1/rank?x=1 HTTP/1.1"
    assert b"content-length: 7" in head.lower()
    assert body == b'{"q":1}'


async def test_keeps_the_connection_alive_between_calls() -> None:
    async with serving(answer_ok) as (server, url), client(url) as http:
        for _ in range(3):
            assert (await http.get("/readyz")).status_code == 200
    assert server.connections == 1


async def test_reads_a_chunked_response() -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

    async with serving(chunked) as (_, url), client(url) as http:
        response = await http.get("/")
    assert response.status_code == 503
    assert response.text == "hello world"


async def test_a_connection_the_server_closes_is_not_reused() -> None:
    async def answer_and_close(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi")
        await writer.drain()
        writer.close()

    async with serving(answer_and_close) as (server, url), client(url) as http:
        assert [(await http.get("/")).text for _ in range(2)] == ["hi", "hi"]
    assert server.connections == 2


async def test_a_kept_alive_connection_closed_while_idle_is_replaced() -> None:
    """The server drops the connection right after answering (no `connection: close`): the next
    call finds it closed, before or after sending, and goes out again on a new one."""

    async def answer_then_drop(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        await writer.drain()
        writer.transport.abort()

    async with serving(answer_then_drop) as (server, url), client(url) as http:
        for _ in range(3):
            assert (await http.post("/", content=b"x")).status_code == 200
    assert server.connections == 3


async def test_a_call_the_server_drops_unanswered_on_a_reused_connection_goes_out_again() -> None:
    """The server closes a kept-alive connection just as the next request arrives (its idle timeout)."""
    seen: list[bytes] = []

    async def drop_every_second(request: bytes, writer: asyncio.StreamWriter) -> None:
        seen.append(request)
        if len(seen) == 2:
            writer.transport.abort()
        else:
            await answer_ok(request, writer)

    async with serving(drop_every_second) as (server, url), client(url) as http:
        assert (await http.post("/", content=b"first")).status_code == 200
        assert (await http.post("/", content=b"second")).status_code == 200
    assert server.connections == 2
    assert [r.endswith(b"second") for r in seen] == [False, True, True]


async def test_a_call_dropped_unanswered_on_a_new_connection_is_a_read_error() -> None:
    async def drop(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    async with serving(drop) as (server, url), client(url) as http:
        with pytest.raises(httpx.ReadError):
            await http.get("/")
    assert server.connections == 1  # not sent again: only a stale kept-alive connection is retried


async def test_a_response_cut_short_is_a_read_error() -> None:
    async def half(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.transport.abort()

    async with serving(half) as (_, url), client(url) as http:
        with pytest.raises(httpx.ReadError):
            await http.get("/")


async def test_garbage_is_a_protocol_error() -> None:
    async def garbage(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"<html>not http</html>\r\n\r\n")

    async with serving(garbage) as (_, url), client(url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/")


async def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(f"http://127.0.0.1:{port}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_no_answer_is_a_read_timeout_and_the_connection_is_dropped() -> None:
    calls = 0

    async def silent_once(request: bytes, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            await answer_ok(request, writer)

    async with serving(silent_once) as (server, url), client(url, timeout=httpx.Timeout(5.0, read=0.05)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/")
        assert (await http.get("/")).status_code == 200
    assert server.connections == 2  # a late answer on the first connection can never be taken for the second's


async def test_a_cancelled_call_does_not_leave_its_connection_in_the_pool() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def held_once(request: bytes, writer: asyncio.StreamWriter) -> None:
        if not started.is_set():
            started.set()
            await release.wait()
        await answer_ok(request, writer)

    async with serving(held_once) as (server, url), client(url) as http:
        call = asyncio.ensure_future(http.get("/"))
        await started.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert (await http.get("/")).status_code == 200
        release.set()
    assert server.connections == 2


async def test_calls_beyond_max_connections_wait_for_a_free_one() -> None:
    async with serving(answer_ok) as (server, url), client(url, max_connections=1) as http:
        responses = await asyncio.gather(*(http.get("/") for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert server.connections == 1


async def test_no_free_connection_in_time_is_a_pool_timeout() -> None:
    release = asyncio.Event()

    async def held(request: bytes, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        await answer_ok(request, writer)

    async with serving(held) as (_, url), client(url, timeout=httpx.Timeout(5.0, pool=0.05), max_connections=1) as http:
        first = asyncio.ensure_future(http.get("/"))
        await asyncio.sleep(0.01)
        with pytest.raises(httpx.PoolTimeout):
            await http.get("/")
        release.set()
        assert (await first).status_code == 200


@pytest.mark.parametrize(("url", "method"), [("https://127.0.0.1:1/", "GET"), ("http://127.0.0.1:1/", "HEAD")])
async def test_what_it_cannot_do_is_refused(url: str, method: str) -> None:
    async with httpx.AsyncClient(transport=PooledTransport()) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.request(method, url)


@pytest.mark.parametrize(("limits", "name"), [({"max_connections": 0}, "max_connections"), ({"max_keepalive": -1}, "max_keepalive")])
def test_bad_limits_are_refused(limits: dict[str, int], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        PooledTransport(**limits)
