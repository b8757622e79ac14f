"""The HTTP wire form of client calls, shared by the sync and async transports.

Nothing here does I/O: it builds ``httpx.Request`` objects and reads ``httpx.Response``
objects, so :class:`~nexus.client.HTTPTransport` and
:class:`~nexus.client.AsyncHTTPTransport` differ only in how they send.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from nexus import paths
from nexus.client._transports.base import RpcRequest, RpcResponse
from nexus.errors import (
    InternalError,
    InvalidArgumentError,
    NexusError,
    UnavailableError,
    error_from_payload,
)
from nexus.rpc import decode_value, encode_value

__all__ = [
    "STREAM_THRESHOLD",
    "RemoteReadStream",
    "bound",
    "client_headers",
    "content_result",
    "content_url",
    "cut_short",
    "decode_error",
    "json_body",
    "read_info",
    "read_url",
    "route_of",
    "rpc_request",
    "rpc_result",
    "unreachable_as_unavailable",
    "upload_headers",
    "why_stopped",
]

#: Writes of more bytes than this (or of a stream) go through the content route.
STREAM_THRESHOLD = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RemoteReadStream:
    """What ``open_read`` returns over HTTP: the file's headers and its byte chunks
    (an iterator, or an async iterator from the async transport)."""

    info: dict[str, Any]
    chunks: Iterator[bytes] | AsyncIterator[bytes]


def client_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": "nexus-python"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def route_of(request: RpcRequest) -> str:
    """Which wire form carries ``request``: ``rpc``, or one of the content routes."""
    if request.method in ("read", "open_read"):
        return request.method
    if request.method in ("write", "append") and _should_stream(request.params.get("data")):
        return "upload" if request.method == "write" else "append"
    return "rpc"


def rpc_request(client: httpx.Client | httpx.AsyncClient, request: RpcRequest,
                request_id: int) -> httpx.Request:
    body = {"jsonrpc": "2.0", "method": request.method, "id": request_id,
            "params": encode_value(request.params)}
    # ASCII-escaped JSON: any str (even a lone surrogate) reaches the server, whose
    # validation then answers exactly as it would in-process.
    return client.build_request("POST", f"/api/nfs/{request.method}",
                                content=json.dumps(body, separators=(",", ":")).encode(),
                                headers={"Content-Type": "application/json"})


def rpc_result(response: httpx.Response) -> RpcResponse:
    payload = json_body(response)
    if "error" in payload:
        return RpcResponse(error=decode_error(payload["error"]))
    return RpcResponse(result=decode_value(payload.get("result")))


def upload_headers(if_match: str | None, if_none_match: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/octet-stream"}
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"'
    if if_none_match:
        headers["If-None-Match"] = "*"
    return headers


def content_url(path: Any) -> str:
    return f"/api/fs/content?{_query(path)}"


def content_result(response: httpx.Response) -> RpcResponse:
    payload = json_body(response)
    if "error" in payload:
        return RpcResponse(error=decode_error(payload["error"]))
    return RpcResponse(result=payload.get("result"))


def read_url(path: Any, offset: int, length: int | None) -> str:
    query = _query(path)
    if offset:
        query += f"&offset={offset}"
    if length is not None:
        query += f"&length={length}"
    return f"/api/fs/content?{query}"


def read_info(path: str, response: httpx.Response) -> dict[str, Any]:
    return {"path": path, "etag": response.headers.get("etag", "").strip('"')}


def cut_short(response: httpx.Response) -> bool:
    """Whether a finished download is shorter than it said. A transport that does not
    enforce Content-Length (an in-process ASGI one) ends a cut body quietly: never hand
    a short file over as a whole one."""
    declared = response.headers.get("content-length", "")
    return declared.isdigit() and response.num_bytes_downloaded < int(declared)


def why_stopped(reply: RpcResponse, path: str, received: int,
                response: httpx.Response) -> NexusError:
    """The error for a cut download, given the answer to a ``stat`` sent after it."""
    if reply.error is not None:
        return reply.error
    expected = response.headers.get("content-length", "?")
    return UnavailableError(f"the download of {path} stopped after {received} of "
                            f"{expected} bytes; retry")


@contextlib.contextmanager
def unreachable_as_unavailable(request: httpx.Request, base_url: Any) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise UnavailableError(f"request to {request.url.host} timed out") from exc
    except httpx.TransportError as exc:
        raise UnavailableError(f"cannot reach the Nexus server at {base_url}: {exc}") from exc


def bound(method: Callable[..., Any], request: RpcRequest) -> Callable[[], Any]:
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


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        raise InternalError(f"the server answered HTTP {response.status_code} without a "
                            "JSON body") from None
    if not isinstance(payload, dict):
        raise InternalError("the server answered with an unexpected JSON shape")
    return payload


def decode_error(error: Any) -> NexusError:
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, dict) and "code" in data:
        return error_from_payload(data)
    message = error.get("message", "error") if isinstance(error, dict) else str(error)
    return InternalError(str(message))
