"""The async client, driven from the synchronous tests of the client suite.

Modules marked ``both_clients`` run each client test twice: through
:class:`~nexus.client.NexusClient` and through :class:`~nexus.client.AsyncNexusClient`
behind :class:`BlockingClient`, which awaits every call on an event loop in a portal
thread. The same assertions then hold for both, exceptions included. Over HTTP the async
client reaches the app through :class:`StreamingASGITransport`, which streams bodies
both ways as a socket would (httpx's own ASGITransport gathers a response whole).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import unquote

import httpx
from anyio.from_thread import BlockingPortal

from nexus.client import AsyncNexusClient

__all__ = ["BlockingClient", "StreamingASGITransport"]


class BlockingClient:
    """``client``'s coroutines as blocking calls; async iterators as iterators."""

    def __init__(self, client: AsyncNexusClient, portal: BlockingPortal) -> None:
        self._client = client
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if inspect.isasyncgenfunction(method):
            return lambda *args, **kwargs: self._iterate(method(*args, **kwargs))
        if not inspect.iscoroutinefunction(method):
            return method

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._blocking(self._portal.call(functools.partial(method, *args,
                                                                      **kwargs)))

        return call

    def _blocking(self, result: Any) -> Any:
        if isinstance(result, AsyncIterator):
            return self._iterate(result)
        chunks = getattr(result, "chunks", None)
        if isinstance(chunks, AsyncIterator):  # _call_rpc("open_read", …)
            return dataclasses.replace(result, chunks=self._iterate(chunks))
        return result

    def _iterate(self, iterator: AsyncIterator[Any]) -> Iterator[Any]:
        try:
            while True:
                try:
                    yield self._portal.call(iterator.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                self._portal.call(aclose)

    def close(self) -> None:
        self._portal.call(self._client.aclose)

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """An ASGI app as an httpx transport, with request and response bodies streamed a
    chunk at a time (one chunk in flight: the app waits for the client to read)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.stream.__aiter__()  # type: ignore[union-attr]
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        disconnected = asyncio.Event()
        sent_all = ended = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_all
            if sent_all:
                await disconnected.wait()
                return {"type": "http.disconnect"}
            try:
                chunk = await body.__anext__()
            except StopAsyncIteration:
                sent_all = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await chunks.put(message["body"])
                if not message.get("more_body", False):
                    await end()

        async def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                await chunks.put(None)

        async def run() -> None:
            try:
                await self._app(_scope(request), receive, send)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise
            finally:
                await end()

        task = asyncio.create_task(run())
        message = await started
        return httpx.Response(message["status"], headers=message.get("headers", []),
                              stream=_ResponseBody(chunks, task, disconnected),
                              request=request)


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue[bytes | None], task: asyncio.Task[None],
                 disconnected: asyncio.Event) -> None:
        self._chunks, self._task, self._disconnected = chunks, task, disconnected

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._disconnected.set()
        if not self._task.done():
            self._task.cancel()


def _scope(request: httpx.Request) -> dict[str, Any]:
    url = request.url
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": request.method, "scheme": url.scheme, "root_path": "",
        "path": unquote(url.path), "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query, "server": (url.host, url.port or 80),
        "client": ("127.0.0.1", 50000),
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
    }
