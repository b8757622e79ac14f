"""A Nexus server over HTTP: JSON-RPC for calls, raw streams for file content.

One ``httpx.Client`` (one keep-alive connection pool) per transport. Connection
failures are retried by httpx's transport only while no request reached the server,
so a write is never sent twice. File reads always use the streaming download endpoint;
writes use it above :data:`STREAM_THRESHOLD` bytes or whenever ``data`` is a stream.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from nexus import paths
from nexus.blobs.base import iter_chunks
from nexus.client._transports.base import BaseTransport, RpcRequest, RpcResponse
from nexus.errors import (
    InternalError,
    InvalidArgumentError,
    NexusError,
    UnavailableError,
    error_from_payload,
)
from nexus.rpc import decode_value, encode_value

__all__ = ["STREAM_THRESHOLD", "HTTPTransport", "RemoteReadStream"]

STREAM_THRESHOLD = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RemoteReadStream:
    """What ``open_read`` returns over HTTP: the file's headers and its byte chunks."""

    info: dict[str, Any]
    chunks: Iterator[bytes]


class HTTPTransport(BaseTransport):
    """Talks to ``url`` with ``api_key``; ``timeout`` in seconds (``None``: no timeout)."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float | None = 30.0,
                 retries: int = 2, client: httpx.Client | None = None) -> None:
        headers = {"User-Agent": "nexus-python"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if client is None:
            client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                  transport=httpx.HTTPTransport(retries=retries))
        # An injected client (e.g. Starlette's TestClient) keeps its own transport.
        client.headers.update(headers)
        self._client = client
        self._ids = itertools.count(1)

    def handle(self, request: RpcRequest) -> RpcResponse:
        try:
            if request.method == "read":
                return RpcResponse(result=_bound(self._read, request)())
            if request.method == "open_read":
                return RpcResponse(result=_bound(self._open_read, request)())
            if request.method == "write" and _should_stream(request.params.get("data")):
                return _bound(self._upload, request)()
            if request.method == "append" and _should_stream(request.params.get("data")):
                return _bound(self._append, request)()
            return self._rpc(request)
        except NexusError as exc:
            return RpcResponse(error=exc)

    def close(self) -> None:
        self._client.close()

    # -- the two wire forms ------------------------------------------------------------

    def _rpc(self, request: RpcRequest) -> RpcResponse:
        body = {"jsonrpc": "2.0", "method": request.method, "id": next(self._ids),
                "params": encode_value(request.params)}
        # ASCII-escaped JSON: any str (even a lone surrogate) reaches the server, whose
        # validation then answers exactly as it would in-process.
        response = self._send("POST", f"/api/nfs/{request.method}",
                              content=json.dumps(body, separators=(",", ":")).encode(),
                              headers={"Content-Type": "application/json"})
        payload = _json(response)
        if "error" in payload:
            return RpcResponse(error=_decode_error(payload["error"]))
        return RpcResponse(result=decode_value(payload.get("result")))

    def _upload(self, path: str, data: Any, if_match: str | None = None,
                if_none_match: bool = False) -> RpcResponse:
        headers = {"Content-Type": "application/octet-stream"}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        if if_none_match:
            headers["If-None-Match"] = "*"
        return self._send_content("PUT", path, data, headers)

    def _append(self, path: str, data: Any) -> RpcResponse:
        return self._send_content("POST", path, data,
                                  {"Content-Type": "application/octet-stream"})

    def _send_content(self, method: str, path: str, data: Any,
                      headers: dict[str, str]) -> RpcResponse:
        response = self._send(method, f"/api/fs/content?{_query(path)}",
                              content=iter_chunks(data), headers=headers)
        payload = _json(response)
        if "error" in payload:
            return RpcResponse(error=_decode_error(payload["error"]))
        return RpcResponse(result=payload.get("result"))

    def _read(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        stream = self._open_read(path, offset, length)
        return b"".join(stream.chunks)

    def _open_read(self, path: str, offset: int = 0,
                   length: int | None = None) -> RemoteReadStream:
        query = _query(path)
        if offset:
            query += f"&offset={offset}"
        if length is not None:
            query += f"&length={length}"
        request = self._client.build_request("GET", f"/api/fs/content?{query}")
        response = self._send_request(request, stream=True)
        if response.status_code >= 400:
            response.read()
            response.close()
            raise _decode_error(_json(response).get("error", {}))
        info = {"path": path, "etag": response.headers.get("etag", "").strip('"')}
        return RemoteReadStream(info, self._iterate(response, path))

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
        # A transport that does not enforce Content-Length (an in-process ASGI one)
        # ends a cut body quietly: never hand a short file over as a whole one.
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and response.num_bytes_downloaded < int(declared):
            raise self._why_stopped(path, received, response)

    def _why_stopped(self, path: str, received: int, response: httpx.Response) -> NexusError:
        """The error for a download cut short. Its status line was sent long ago, so a
        server that ends it — the key, the tenant or the permission lapsed mid-stream —
        can only close the connection: a new request on the same key says why."""
        try:
            reply = self._rpc(RpcRequest("stat", {"path": path}))
        except NexusError as exc:
            return exc
        if reply.error is not None:
            return reply.error
        expected = response.headers.get("content-length", "?")
        return UnavailableError(f"the download of {path} stopped after {received} of "
                                f"{expected} bytes; retry")

    # -- plumbing ----------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._send_request(self._client.build_request(method, url, **kwargs))

    def _send_request(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            return self._client.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise UnavailableError(f"request to {request.url.host} timed out") from exc
        except httpx.TransportError as exc:
            raise UnavailableError(f"cannot reach the Nexus server at "
                                   f"{self._client.base_url}: {exc}") from exc


def _bound(method: Callable[..., Any], request: RpcRequest) -> Callable[[], Any]:
    """``method`` with the request's parameters, checked as the server checks them."""
    try:
        inspect.signature(method).bind(**request.params)
    except TypeError as exc:
        raise InvalidArgumentError(f"{request.method}: {exc}") from None
    return functools.partial(method, **request.params)


def _query(path: Any) -> str:
    # Validate exactly as the server will, so an unencodable path (a lone surrogate)
    # raises the same InvalidPathError here as in-process instead of an encoding error.
    return f"path={quote(paths.normalize(path), safe='')}"


def _should_stream(data: Any) -> bool:
    if isinstance(data, bytes | bytearray | memoryview):
        return len(data) > STREAM_THRESHOLD
    return data is not None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        raise InternalError(f"the server answered HTTP {response.status_code} without a "
                            "JSON body") from None
    if not isinstance(payload, dict):
        raise InternalError("the server answered with an unexpected JSON shape")
    return payload


def _decode_error(error: Any) -> NexusError:
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, dict) and "code" in data:
        return error_from_payload(data)
    message = error.get("message", "error") if isinstance(error, dict) else str(error)
    return InternalError(str(message))
