"""A Nexus server over HTTP: JSON-RPC for calls, raw streams for file content.

One ``httpx.Client`` (one keep-alive connection pool) per transport. Connection
failures are retried by httpx's transport only while no request reached the server,
so a write is never sent twice. File reads always use the streaming download endpoint;
writes use it above :data:`STREAM_THRESHOLD` bytes or whenever ``data`` is a stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx

from nexus.blobs.base import iter_chunks
from nexus.client._transports._wire import (
    STREAM_THRESHOLD,
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
from nexus.client._transports.base import BaseTransport, RpcRequest, RpcResponse, absolute_url
from nexus.errors import NexusError

__all__ = ["STREAM_THRESHOLD", "HTTPTransport", "RemoteReadStream"]


class HTTPTransport(BaseTransport):
    """Talks to ``url`` with ``api_key``; ``timeout`` in seconds (``None``: no timeout)."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float | None = 30.0,
                 retries: int = 2, client: httpx.Client | None = None) -> None:
        if client is None:
            client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                  transport=httpx.HTTPTransport(retries=retries))
        # An injected client (e.g. Starlette's TestClient) keeps its own transport.
        client.headers.update(client_headers(api_key))
        self._client = client
        self._ids = itertools.count(1)

    def handle(self, request: RpcRequest) -> RpcResponse:
        try:
            route = route_of(request)
            if route == "read":
                return RpcResponse(result=bound(self._read, request)())
            if route == "open_read":
                return RpcResponse(result=bound(self._open_read, request)())
            if route in ("upload", "append"):
                return bound(self._upload if route == "upload" else self._append, request)()
            return self._rpc(request)
        except NexusError as exc:
            return RpcResponse(error=exc)

    def close(self) -> None:
        self._client.close()

    def absolute_url(self, url: str) -> str:
        return absolute_url(str(self._client.base_url), url)

    # -- the two wire forms ------------------------------------------------------------

    def _rpc(self, request: RpcRequest) -> RpcResponse:
        return rpc_result(self._send_request(rpc_request(self._client, request,
                                                         next(self._ids))))

    def _upload(self, path: str, data: Any, if_match: str | None = None,
                if_none_match: bool = False) -> RpcResponse:
        return self._send_content("PUT", path, data, upload_headers(if_match, if_none_match))

    def _append(self, path: str, data: Any) -> RpcResponse:
        return self._send_content("POST", path, data, upload_headers(None, False))

    def _send_content(self, method: str, path: str, data: Any,
                      headers: dict[str, str]) -> RpcResponse:
        request = self._client.build_request(method, content_url(path),
                                             content=iter_chunks(data), headers=headers)
        return content_result(self._send_request(request))

    def _read(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        stream = self._open_read(path, offset, length)
        return b"".join(stream.chunks)

    def _open_read(self, path: str, offset: int = 0,
                   length: int | None = None) -> RemoteReadStream:
        request = self._client.build_request("GET", read_url(path, offset, length))
        response = self._send_request(request, stream=True)
        if response.status_code >= 400:
            response.read()
            response.close()
            raise decode_error(json_body(response).get("error", {}))
        return RemoteReadStream(read_info(path, response), self._iterate(response, path))

    def _iterate(self, response: httpx.Response, path: str) -> Iterator[bytes]:
        received = 0
        try:
            for chunk in response.iter_bytes(1024 * 1024):
                received += len(chunk)
                yield chunk
        except httpx.TransportError as exc:
            raise self._why_stopped(path, received, response) from exc
        finally:
            response.close()
        if cut_short(response):
            raise self._why_stopped(path, received, response)

    def _why_stopped(self, path: str, received: int, response: httpx.Response) -> NexusError:
        """The error for a download cut short. Its status line was sent long ago, so a
        server that ends it — the key, the tenant or the permission lapsed mid-stream —
        can only close the connection: a new request on the same key says why."""
        try:
            reply = self._rpc(RpcRequest("stat", {"path": path}))
        except NexusError as exc:
            return exc
        return why_stopped(reply, path, received, response)

    # -- plumbing ----------------------------------------------------------------------

    def _send_request(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        with unreachable_as_unavailable(request, self._client.base_url):
            return self._client.send(request, stream=stream)
