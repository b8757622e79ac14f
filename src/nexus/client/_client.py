"""The Nexus client: one API over any transport (in-process engine or HTTP server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from nexus.client._api import PAGE, ClientAPI, sign_url_params
from nexus.client._transports.base import BaseTransport, RpcRequest

__all__ = ["NexusClient"]


class NexusClient(ClientAPI):
    """File operations on a Nexus deployment, as the principal the transport carries.

    Results are plain data: file metadata is a dict with ``path``, ``name``, ``type``
    (``"file"``/``"directory"``), ``size``, ``etag``, ``version``, ``created_at`` and
    ``modified_at``. Errors are the classes of :mod:`nexus.errors` whichever transport
    carried the call. :class:`~nexus.client.AsyncNexusClient` has the same methods as
    coroutines.
    """

    def __init__(self, transport: BaseTransport) -> None:
        self._transport = transport

    def _call_rpc(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call any RPC method by name with named parameters (the guide's escape hatch)."""
        response = self._transport.handle(RpcRequest(method, dict(params or {})))
        if response.error is not None:
            raise response.error
        return response.result

    def read_stream(self, path: str, *, offset: int = 0,
                    length: int | None = None) -> Iterator[bytes]:
        """A file's bytes in chunks, for files too large to hold in memory."""
        stream = self._call_rpc("open_read", {"path": path, "offset": offset, "length": length})
        return stream.chunks

    def list(self, path: str = "/", recursive: bool = False, *, limit: int | None = None,
             cursor: str | None = None) -> list[dict[str, Any]]:
        """Entries below ``path`` (every one, unless ``limit`` caps the count)."""
        if limit is not None:
            return self.list_page(path, recursive, limit=limit, cursor=cursor)["entries"]
        return list(self.iter_list(path, recursive, cursor=cursor))

    def iter_list(self, path: str = "/", recursive: bool = False, *,
                  cursor: str | None = None, page_size: int = PAGE) -> Iterator[dict[str, Any]]:
        """Every entry below ``path``, fetched a page at a time."""
        while True:
            page = self.list_page(path, recursive, limit=page_size, cursor=cursor)
            yield from page["entries"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def _pages(self, method: str, params: dict[str, Any], limit: int | None,
               after: str | None, position: Callable[[Any], str]) -> list[Any]:
        # The server answers at most a page per call (docs/http-api.md#limits); without a
        # limit the caller asked for everything, so the client walks the pages.
        if limit is not None:
            return self._call_rpc(method, {**params, "limit": limit, "after": after})
        found: list[Any] = []
        while True:
            page = self._call_rpc(method, {**params, "limit": PAGE, "after": after})
            found.extend(page)
            if len(page) < PAGE:
                return found
            after = position(page[-1])

    def sign_url(self, path: str, method: str = "GET", expires_in: float = 3600, *,
                 max_size: int | None = None, content_type: str | None = None) -> str:
        """An absolute URL that lets whoever holds it ``GET`` (download, with ``Range``)
        or ``PUT`` (upload, at most ``max_size`` bytes, of ``content_type`` if given)
        this one path with no API key, for ``expires_in`` seconds — as this client's key,
        while that key lives and keeps the permission (docs/sdk.md#signed-urls)."""
        signed = self._call_rpc("sign_url", sign_url_params(
            path, method, expires_in, max_size, content_type))
        return self._transport.absolute_url(signed["url"])

    def close(self) -> None:
        """Close the transport (and an embedded engine's database connections)."""
        self._transport.close()

    def __enter__(self) -> NexusClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
