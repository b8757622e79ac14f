"""The async Nexus client: :class:`NexusClient`'s methods as coroutines."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import Any

from nexus.client._api import PAGE, ClientAPI, sign_url_params
from nexus.client._transports.base import AsyncBaseTransport, RpcRequest

__all__ = ["AsyncNexusClient"]


def _coroutines(cls: type[AsyncNexusClient]) -> type[AsyncNexusClient]:
    """Give ``cls`` every one-RPC call of :class:`ClientAPI` as a coroutine function
    with the same name, signature and docstring (its body builds the parameters and
    returns what ``_call_rpc`` — a coroutine here — returns, which the wrapper awaits)."""
    for name, function in vars(ClientAPI).items():
        if name.startswith("_") or not inspect.isfunction(function) or name in vars(cls):
            continue
        setattr(cls, name, _awaiting(function))
    return cls


def _awaiting(function: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(function)
    async def call(self: AsyncNexusClient, *args: Any, **kwargs: Any) -> Any:
        return await function(self, *args, **kwargs)

    return call


@_coroutines
class AsyncNexusClient(ClientAPI):
    """:class:`~nexus.client.NexusClient` for asyncio (and trio) applications: the same
    methods with the same parameters, results and exceptions, each a coroutine.

    Over HTTP it uses one ``httpx.AsyncClient`` (no thread per call); embedded, each
    call runs the engine in a worker thread. ``data`` may also be an async iterator of
    bytes, and :meth:`read_stream` and :meth:`iter_list` give async iterators::

        async with nexus.connect_async(config={"url": url, "api_key": key}) as nx:
            await nx.write("/tenants/acme/a.txt", b"hello")
            async for chunk in await nx.read_stream("/tenants/acme/a.txt"):
                ...
    """

    def __init__(self, transport: AsyncBaseTransport) -> None:
        self._transport = transport

    async def _call_rpc(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call any RPC method by name with named parameters (the guide's escape hatch)."""
        response = await self._transport.handle(RpcRequest(method, dict(params or {})))
        if response.error is not None:
            raise response.error
        return response.result

    async def read_stream(self, path: str, *, offset: int = 0,
                          length: int | None = None) -> AsyncIterator[bytes]:
        """A file's bytes as an async iterator of chunks (errors such as a missing file
        are raised here, before the first chunk)."""
        stream = await self._call_rpc("open_read", {"path": path, "offset": offset,
                                                    "length": length})
        return stream.chunks

    async def list(self, path: str = "/", recursive: bool = False, *,
                   limit: int | None = None, cursor: str | None = None
                   ) -> list[dict[str, Any]]:
        """Entries below ``path`` (every one, unless ``limit`` caps the count)."""
        if limit is not None:
            return (await self.list_page(path, recursive, limit=limit,
                                         cursor=cursor))["entries"]
        return [entry async for entry in self.iter_list(path, recursive, cursor=cursor)]

    async def iter_list(self, path: str = "/", recursive: bool = False, *,
                        cursor: str | None = None, page_size: int = PAGE
                        ) -> AsyncIterator[dict[str, Any]]:
        """Every entry below ``path``, fetched a page at a time (``async for``)."""
        while True:
            page = await self.list_page(path, recursive, limit=page_size, cursor=cursor)
            for entry in page["entries"]:
                yield entry
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def _pages(self, method: str, params: dict[str, Any], limit: int | None,
                     after: str | None, position: Callable[[Any], str]) -> list[Any]:
        # As NexusClient._pages: without a limit, every page.
        if limit is not None:
            return await self._call_rpc(method, {**params, "limit": limit, "after": after})
        found: list[Any] = []
        while True:
            page = await self._call_rpc(method, {**params, "limit": PAGE, "after": after})
            found.extend(page)
            if len(page) < PAGE:
                return found
            after = position(page[-1])

    async def sign_url(self, path: str, method: str = "GET", expires_in: float = 3600, *,
                       max_size: int | None = None, content_type: str | None = None) -> str:
        """As :meth:`NexusClient.sign_url <nexus.client.NexusClient.sign_url>`."""
        signed = await self._call_rpc("sign_url", sign_url_params(
            path, method, expires_in, max_size, content_type))
        return self._transport.absolute_url(signed["url"])

    async def aclose(self) -> None:
        """Close the transport (and an embedded engine's database connections)."""
        await self._transport.aclose()

    #: The sync client's name for :meth:`aclose`.
    close = aclose

    async def __aenter__(self) -> AsyncNexusClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
