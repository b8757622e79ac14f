"""``GET``/``PUT /api/fs/content?path=…``: file content as raw, streamed bytes.

Downloads honour ``Range`` (one range) and return the etag; uploads stream the request
body straight into the blob store and honour ``If-Match`` / ``If-None-Match: *``.

Both are streams: each holds a slot of :class:`~nexus.server.admission.StreamAdmission`
from the moment its key is known until its last byte, and an upload's body must keep to
its :class:`~nexus.server.admission.BodyBudget` (else 408, staged bytes discarded).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from nexus.errors import InvalidArgumentError, RangeNotSatisfiableError
from nexus.rpc import to_plain
from nexus.server.admission import (
    BodyBudget,
    StreamAdmission,
    StreamSlot,
    next_chunk,
    stream_bucket,
)
from nexus.server.credentials import authenticate, bearer_token
from nexus.server.responses import error_response, result_response

if TYPE_CHECKING:
    from nexus.service import NexusService
    from nexus.types import Principal

__all__ = ["Identify", "download", "serve_download", "serve_upload", "upload"]

#: Who a content request acts as, called in the worker thread before any byte moves.
Identify = Callable[[], "Principal"]
_RANGE = re.compile(r"bytes=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)", re.ASCII | re.IGNORECASE)


def _path(request: Request) -> str:
    path = request.query_params.get("path")
    if path is None:
        raise InvalidArgumentError("query parameter 'path' is required")
    return path  # validated by the service like any other path


#: A download of at most this many bytes is read whole in the worker thread that opened
#: it and sent as one body: streaming it would cost two more thread hand-offs (a chunk,
#: then the end) for what is one chunk. It keeps its stream slot until the body is sent,
#: so the stream caps bound that memory too (--streams-total x 64 KiB).
WHOLE_BODY = 64 * 1024


def _open(service: NexusService, admission: StreamAdmission, identify: Identify, path: str,
          range_header: str | None, offset: int, length: int | None,
          ) -> tuple[dict[str, Any], Iterator[bytes] | bytes, tuple | None, StreamSlot]:
    """The file's info, its bytes — whole (``bytes``) when small, else an iterator — and
    the stream slot the response releases once it is sent."""
    principal = identify()
    service.admit(principal)
    slot = admission.acquire(stream_bucket(principal))
    try:
        info, chunks, ranged = _open_stream(service, principal, path, range_header, offset,
                                            length)
        if _body_length(info, ranged, offset, length) <= WHOLE_BODY:
            return info, b"".join(chunks), ranged, slot
        return info, chunks, ranged, slot
    except BaseException:
        slot.release()
        raise


def _body_length(info: dict[str, Any], ranged: tuple | None, offset: int,
                 length: int | None) -> int:
    if ranged is not None:
        return int(ranged[1] - ranged[0])
    end = info["size"] if length is None else min(info["size"], offset + length)
    return max(0, end - offset)


def _open_stream(service: NexusService, principal: Principal, path: str,
                 range_header: str | None, offset: int, length: int | None,
                 ) -> tuple[dict[str, Any], Iterator[bytes], tuple | None]:
    if range_header is None:
        stream = service.files.open_read(principal, path, offset=offset, length=length)
        return to_plain(stream.info), stream.chunks, None
    size = service.files.stat(principal, path).size
    window = _parse_range(range_header, size)
    if window is None:
        stream = service.files.open_read(principal, path, offset=offset, length=length)
        return to_plain(stream.info), stream.chunks, None
    start, end = window
    stream = service.files.open_read(principal, path, offset=start, length=end - start)
    return to_plain(stream.info), stream.chunks, (start, end, size)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The ``[start, end)`` window of a ``Range`` header (RFC 9110 §14.1.2), or None
    when the header is to be ignored and the whole file served: another range unit, a
    malformed range, several ranges (a server MAY ignore Range; serving one multipart
    body per request is not worth it). A range that names no byte of the file — an
    empty file included — is unsatisfiable: 416, never a 206 of nothing."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first and last and _int(first) > _int(last):
        return None  # "bytes=5-2" is invalid syntax, not an empty range
    if first == "":
        start, end = max(0, size - _int(last)), size
        if _int(last) == 0 or size == 0:
            raise _unsatisfiable(header, size)
    else:
        start = _int(first)
        if start >= size:
            raise _unsatisfiable(header, size)
        end = size if last == "" else min(size, _int(last) + 1)
    return start, end


def _int(digits: str) -> int:
    # Python refuses int() of more than 4,300 digits; any position past 2**63 is past
    # every file's end anyway.
    return int(digits) if len(digits) <= 18 else 2**63


def _unsatisfiable(header: str, size: int) -> RangeNotSatisfiableError:
    return RangeNotSatisfiableError(
        f"range {header[:100]!r} names no byte of the file ({size} bytes)", size=size)


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is True too
        raise InvalidArgumentError(f"query parameter {name!r} must be a non-negative integer")
    return int(value)


async def download(request: Request) -> Response:
    """Stream a file, a byte range of it (``Range: bytes=a-b``), or the SDK's
    ``offset``/``length`` window (an offset past the end yields no bytes, as in-process)."""
    service: NexusService = request.app.state.service
    try:
        path = _path(request)
    except InvalidArgumentError as exc:
        return error_response(exc)
    return await serve_download(request, partial(authenticate, service,
                                                  bearer_token(request)), path)


async def serve_download(request: Request, identify: Identify, path: str) -> Response:
    """A download of ``path`` as the principal ``identify`` names (in the worker thread,
    before anything is read): ``Range``, ``If-None-Match`` and the stream caps apply."""
    service: NexusService = request.app.state.service
    try:
        offset, length = _int_param(request, "offset") or 0, _int_param(request, "length")
        info, chunks, ranged, slot = await run_in_threadpool(
            _open, service, request.app.state.admission, identify, path,
            request.headers.get("range"), offset, length)
    except RangeNotSatisfiableError as exc:
        response = error_response(exc)
        response.headers["Content-Range"] = f"bytes */{exc.details['size']}"
        return response
    except Exception as exc:  # noqa: BLE001 - every error becomes a response
        return error_response(exc)
    headers = {"ETag": f'"{info["etag"]}"', "Accept-Ranges": "bytes",
               "X-Nexus-Version": str(info["version"])}
    if _matches(request.headers.get("if-none-match"), info["etag"]):
        # The client has this content: no body (the opened read is dropped unsent).
        if not isinstance(chunks, bytes):
            close = getattr(chunks, "close", None)
            if close is not None:
                await run_in_threadpool(close)
        slot.release()
        return Response(status_code=304, headers=headers)
    status = 200
    if ranged is not None:
        start, end, size = ranged
        headers["Content-Range"] = f"bytes {start}-{max(start, end - 1)}/{size}"
        status = 206
    if isinstance(chunks, bytes):
        return _SlotResponse(chunks, slot, status_code=status,
                             media_type="application/octet-stream", headers=headers)
    headers["Content-Length"] = str(_body_length(info, ranged, offset, length))
    return _SlotStreamingResponse(chunks, slot, status_code=status,
                                  media_type="application/octet-stream", headers=headers)


def _matches(header: str | None, etag: str | None) -> bool:
    """Whether ``If-None-Match`` names the current etag (RFC 9110 §13.1.2: ``*`` or a
    list of entity tags, weak ones compared weakly)."""
    if not header or etag is None:
        return False
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    return "*" in tags or etag in tags


class _GivesSlotBack:
    """A download that gives its stream slot back however it ends: sent, failed, or
    cut short by the client's disconnect (which cancels the send)."""

    _slot: StreamSlot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
        finally:
            self._slot.release()


class _SlotStreamingResponse(_GivesSlotBack, StreamingResponse):
    def __init__(self, content: Iterator[bytes], slot: StreamSlot, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._slot = slot


class _SlotResponse(_GivesSlotBack, Response):
    """A small download, sent whole."""

    def __init__(self, content: bytes, slot: StreamSlot, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._slot = slot


def _write(service: NexusService, admission: StreamAdmission, identify: Identify, path: str,
           chunks: Iterator[bytes], if_match: str | None, if_none_match: bool,
           append: bool) -> Any:
    principal = identify()  # before a single byte is stored
    service.admit(principal)
    # Admitted before the first byte is pulled: a refused upload costs this thread only
    # for the key check.
    with admission.acquire(stream_bucket(principal)):
        if append:
            return to_plain(service.files.append(principal, path, chunks))
        return to_plain(service.files.write(principal, path, chunks, if_match=if_match,
                                            if_none_match=if_none_match))


class _Body:
    """The request body as the worker thread pulls it: each chunk is fetched from the
    event loop on demand (never buffered) and timed there by ``budget``, so a stalled
    client raises :class:`RequestTimeoutError` in the thread instead of holding it."""

    def __init__(self, stream: AsyncIterator[bytes], budget: BodyBudget) -> None:
        self._stream, self._budget = stream, budget
        self.complete = False  # the whole body was read

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = anyio.from_thread.run(next_chunk, self._stream, self._budget)
            except StopAsyncIteration:
                self.complete = True
                return
            if chunk:
                yield chunk


async def upload(request: Request) -> JSONResponse:
    """``PUT``: create or replace a file from the raw body; ``POST``: append the body."""
    service: NexusService = request.app.state.service
    try:
        path = _path(request)
    except InvalidArgumentError as exc:
        return error_response(exc)
    return await serve_upload(request, partial(authenticate, service, bearer_token(request)),
                              path)


async def serve_upload(request: Request, identify: Identify, path: str, *,
                       cap: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None
                       ) -> JSONResponse:
    """Write (``PUT``) or append (``POST``) the body to ``path`` as the principal
    ``identify`` names; ``cap`` wraps the body's chunks (a signed URL's size limit)."""
    service: NexusService = request.app.state.service
    if_match = request.headers.get("if-match")
    if_match = if_match.strip().strip('"') if if_match else None
    if_none_match = request.headers.get("if-none-match", "").strip() == "*"
    new_budget: Callable[[], BodyBudget] = request.app.state.body_budget
    body = _Body(request.stream().__aiter__(), new_budget())
    chunks = iter(body) if cap is None else cap(iter(body))
    try:
        result = await run_in_threadpool(_write, service, request.app.state.admission,
                                         identify, path, chunks, if_match, if_none_match,
                                         request.method == "POST")
    except Exception as exc:  # noqa: BLE001 - every error becomes a response
        response = error_response(exc)
        if not body.complete:
            # The rest of the body is never read: end the connection with the answer
            # rather than leave the client sending into it.
            response.headers["Connection"] = "close"
        return response
    return result_response(result, None)
