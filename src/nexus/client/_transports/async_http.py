"""A Nexus server over HTTP for :class:`~nexus.client.AsyncNexusClient`.

The same wire as :class:`~nexus.client.HTTPTransport` (:mod:`._wire`) over one
``httpx.AsyncClient``: every call is a coroutine on the caller's event loop, with no
thread per call. Uploads take bytes, binary files, iterators or async iterators of
bytes; downloads give async iterators.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import httpx

from nexus.blobs.base import CHUNK_SIZE, iter_chunks
from nexus.client._transports._wire import (
    RemoteReadStream,
    bound,
    client_headers,
    content_result,
    content_url,
    cut_short,
    decode_error,
    json_body,
    read_info,
    read_url,
    route_of,
    rpc_request,
    rpc_result,
    unreachable_as_unavailable,
    upload_headers,
    why_stopped,
)
from nexus.client._transports.base import (
    AsyncBaseTransport,
    RpcRequest,
    RpcResponse,
    absolute_url,
)
from nexus.errors import InvalidArgumentError, NexusError

__all__ = ["AsyncHTTPTransport", "aiter_chunks"]


class AsyncHTTPTransport(AsyncBaseTransport):
    """Talks to ``url`` with ``api_key``; ``timeout`` in seconds (``None``: no timeout)."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float | None = 30.0,
                 retries: int = 2, client: httpx.AsyncClient | None = None,
                 max_connections: int = 100) -> None:
        if client is None:
            client = httpx.AsyncClient(
                base_url=url.rstrip("/"), timeout=timeout,
                transport=httpx.AsyncHTTPTransport(
                    retries=retries, limits=httpx.Limits(max_connections=max_connections)))
        client.headers.update(client_headers(api_key))
        self._client = client
        self._ids = itertools.count(1)

    async def handle(self, request: RpcRequest) -> RpcResponse:
        try:
            route = route_of(request)
            if route == "read":
                return RpcResponse(result=await bound(self._read, request)())
            if route == "open_read":
                return RpcResponse(result=await bound(self._open_read, request)())
            if route in ("upload", "append"):
                send = self._upload if route == "upload" else self._append
                return await bound(send, request)()
            return await self._rpc(request)
        except NexusError as exc:
            return RpcResponse(error=exc)

    async def aclose(self) -> None:
        await self._client.aclose()

    def absolute_url(self, url: str) -> str:
        return absolute_url(str(self._client.base_url), url)

    async def _rpc(self, request: RpcRequest) -> RpcResponse:
        return rpc_result(await self._send(rpc_request(self._client, request,
                                                       next(self._ids))))

    async def _upload(self, path: str, data: Any, if_match: str | None = None,
                      if_none_match: bool = False) -> RpcResponse:
        return await self._send_content("PUT", path, data,
                                        upload_headers(if_match, if_none_match))

    async def _append(self, path: str, data: Any) -> RpcResponse:
        return await self._send_content("POST", path, data, upload_headers(None, False))

    async def _send_content(self, method: str, path: str, data: Any,
                            headers: dict[str, str]) -> RpcResponse:
        request = self._client.build_request(method, content_url(path),
                                             content=aiter_chunks(data), headers=headers)
        return content_result(await self._send(request))

    async def _read(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        stream = await self._open_read(path, offset, length)
        return b"".join([chunk async for chunk in stream.chunks])  # type: ignore[union-attr]

    async def _open_read(self, path: str, offset: int = 0,
                         length: int | None = None) -> RemoteReadStream:
        request = self._client.build_request("GET", read_url(path, offset, length))
        response = await self._send(request, stream=True)
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            raise decode_error(json_body(response).get("error", {}))
        return RemoteReadStream(read_info(path, response), self._iterate(response, path))

    async def _iterate(self, response: httpx.Response, path: str) -> AsyncIterator[bytes]:
        received = 0
        try:
            async for chunk in response.aiter_bytes(1024 * 1024):
                received += len(chunk)
                yield chunk
        except httpx.TransportError as exc:
            raise await self._why_stopped(path, received, response) from exc
        finally:
            await response.aclose()
        if cut_short(response):
            raise await self._why_stopped(path, received, response)

    async def _why_stopped(self, path: str, received: int,
                           response: httpx.Response) -> NexusError:
        # As HTTPTransport._why_stopped: a new request on the same key says why.
        try:
            reply = await self._rpc(RpcRequest("stat", {"path": path}))
        except NexusError as exc:
            return exc
        return why_stopped(reply, path, received, response)

    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        with unreachable_as_unavailable(request, self._client.base_url):
            return await self._client.send(request, stream=stream)


async def aiter_chunks(data: Any, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    """``data`` as byte chunks for an async upload: an async iterator's chunks as they
    come, a binary file read in a worker thread (never on the event loop), bytes and
    plain iterators as :func:`~nexus.blobs.base.iter_chunks` gives them."""
    if hasattr(data, "__aiter__"):
        async for chunk in data:
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise InvalidArgumentError("data iterator must yield bytes")
            if chunk:
                yield bytes(chunk)
        return
    read = getattr(data, "read", None)
    if read is not None:
        while chunk := await anyio.to_thread.run_sync(read, chunk_size):
            if not isinstance(chunk, bytes | bytearray):
                raise InvalidArgumentError("data stream must be opened in binary mode")
            yield bytes(chunk)
        return
    for chunk in iter_chunks(data, chunk_size):
        yield chunk
