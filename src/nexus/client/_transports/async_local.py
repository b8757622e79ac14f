"""The embedded engine for :class:`~nexus.client.AsyncNexusClient`.

The engine is synchronous (docs/architecture.md), so each call runs in a worker thread
(``anyio.to_thread``) through the same :class:`LocalTransport` the sync client uses:
the event loop never waits on SQLite, PostgreSQL or a disk. Streams cross the thread
boundary a chunk at a time in both directions.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import anyio.from_thread
import anyio.to_thread

from nexus.client._transports.base import AsyncBaseTransport, RpcRequest, RpcResponse
from nexus.client._transports.local import LocalTransport

__all__ = ["AsyncLocalTransport"]

_END = object()


class AsyncLocalTransport(AsyncBaseTransport):
    """Runs ``local``'s calls in worker threads; closing it closes ``local``."""

    def __init__(self, local: LocalTransport) -> None:
        self._local = local

    async def handle(self, request: RpcRequest) -> RpcResponse:
        data = request.params.get("data")
        if isinstance(data, AsyncIterable):
            request = RpcRequest(request.method, {**request.params, "data": _pull(data)})
        response = await anyio.to_thread.run_sync(self._local.handle, request)
        chunks = getattr(response.result, "chunks", None)
        if isinstance(chunks, Iterator):  # open_read: give the chunks as they are read
            return RpcResponse(result=replace(response.result, chunks=_push(chunks)))
        return response

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._local.close)

    def absolute_url(self, url: str) -> str:
        return self._local.absolute_url(url)


def _pull(chunks: AsyncIterable[bytes]) -> Iterator[bytes]:
    """An async iterator as the worker thread consumes it: each chunk is fetched from
    the caller's event loop when the engine asks for it, never buffered."""
    iterator = chunks.__aiter__()
    while True:
        try:
            yield anyio.from_thread.run(iterator.__anext__)
        except StopAsyncIteration:
            return


async def _push(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The engine's chunk iterator, each chunk read in a worker thread; closed (which
    ends the engine's read) however the caller's loop over it ends."""
    try:
        while (chunk := await anyio.to_thread.run_sync(next, chunks, _END)) is not _END:
            yield chunk  # type: ignore[misc]
    finally:
        close: Any = getattr(chunks, "close", None)
        if close is not None:
            await anyio.to_thread.run_sync(close)
