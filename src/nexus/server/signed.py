"""``/api/signed/<path>``: file content through a signed URL, with no API key.

The URL is verified (:class:`nexus.service.signing.SignedUrls`) in a worker thread, then
the request is the signer's own download or upload through the same code as
``/api/fs/content``: admission, rate limits, stream caps, permission, quota and audit
all apply as to the signer. The audit events say "via signed URL". These routes alone
answer CORS, and only for the origins the deployment lists (``--cors-origins``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus.context import via_signed_url
from nexus.errors import NexusPermissionError, PayloadTooLargeError
from nexus.server.content import serve_download, serve_upload
from nexus.server.responses import error_response
from nexus.service.signing import SignedGrant

if TYPE_CHECKING:
    from nexus.service import NexusService

__all__ = ["signed_app"]

#: What a page on another origin may send and read (CORS).
_REQUEST_HEADERS = ["Range", "If-None-Match", "If-Match", "Content-Type"]
_EXPOSED_HEADERS = ["ETag", "Content-Range", "Content-Length", "Accept-Ranges",
                    "X-Nexus-Version", "X-Request-ID"]


def signed_app(cors_origins: tuple[str, ...]) -> Starlette:
    """The signed routes, to mount at :data:`nexus.service.signing.ROUTE`."""
    middleware = []
    if cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "PUT"],
            allow_headers=_REQUEST_HEADERS, expose_headers=_EXPOSED_HEADERS, max_age=600))
    return Starlette(routes=[Route("/{path:path}", signed_content, methods=["GET", "PUT"])],
                     middleware=middleware)


async def signed_content(request: Request) -> Response:
    """``GET``: the file (``Range``, ``If-None-Match``); ``PUT``: replace it with the
    body (at most the URL's ``max_size``, of its ``content_type`` if it names one)."""
    service: NexusService = request.app.state.service  # the parent app's state
    path = "/" + request.path_params["path"]
    via_signed_url.set(True)  # copied into the worker threads' contexts below
    try:
        grant: SignedGrant = await run_in_threadpool(
            service.signing.verify, request.method, path, dict(request.query_params))
        if request.method == "PUT":
            _check_upload(request, grant)
    except Exception as exc:  # noqa: BLE001 - every error becomes a response
        response = error_response(exc)
        if request.method == "PUT":
            response.headers["Connection"] = "close"  # the body is never read
        return response
    principal = grant.principal

    def identify():  # noqa: ANN202 - a Principal
        return principal

    if request.method == "GET":
        return await serve_download(request, identify, grant.path)
    cap = None if grant.max_size is None else _capped(grant.max_size)
    return await serve_upload(request, identify, grant.path, cap=cap)


def _check_upload(request: Request, grant: SignedGrant) -> None:
    if grant.content_type is not None:
        sent = request.headers.get("content-type", "")
        if _media_type(sent) != _media_type(grant.content_type):
            raise NexusPermissionError(f"this URL uploads {grant.content_type} only, not "
                                       f"{sent or 'a body without Content-Type'}")
    declared = request.headers.get("content-length", "")
    if grant.max_size is not None and declared.isdigit() and int(declared) > grant.max_size:
        raise PayloadTooLargeError(f"this URL uploads at most {grant.max_size} bytes; the "
                                   f"body has {declared}", limit=grant.max_size)


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _capped(most: int):  # noqa: ANN202 - a chunk iterator transformer
    def cap(chunks: Iterator[bytes]) -> Iterator[bytes]:
        # A body without Content-Length (chunked) is counted as it arrives; the write
        # fails past the cap and leaves nothing behind, as any failed write does.
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            if sent > most:
                raise PayloadTooLargeError(f"this URL uploads at most {most} bytes",
                                           limit=most)
            yield chunk

    return cap
