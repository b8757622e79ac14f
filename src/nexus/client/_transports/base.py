"""The transport contract: one request in, one response out.

A transport moves an :class:`RpcRequest` to a Nexus engine and brings back an
:class:`RpcResponse`. It does nothing else: typed methods, defaults, pagination and
error decoding live in the client, so every transport behaves the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from nexus.errors import InvalidArgumentError, NexusError

__all__ = ["AsyncBaseTransport", "BaseTransport", "RpcRequest", "RpcResponse", "absolute_url"]


@dataclass(frozen=True, slots=True)
class RpcRequest:
    """A method name and its named parameters."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RpcResponse:
    """Either a result (plain data: dicts, lists, bytes, scalars) or an error."""

    result: Any = None
    error: NexusError | None = None


class BaseTransport:
    """Subclasses implement :meth:`handle`; :meth:`close` releases resources."""

    def handle(self, request: RpcRequest) -> RpcResponse:
        """Send ``request`` and return the engine's answer.

        Must not raise for errors the engine reports (return them in ``error``); may raise
        :class:`NexusError` subclasses for transport failures.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the transport is unusable afterwards."""

    def absolute_url(self, url: str) -> str:
        """``url`` (a signed URL the engine made) as the browser must be handed it."""
        return absolute_url(None, url)

    def __enter__(self) -> BaseTransport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncBaseTransport:
    """:class:`BaseTransport` for :class:`~nexus.client.AsyncNexusClient`: the same
    contract, with :meth:`handle` and :meth:`aclose` as coroutines."""

    async def handle(self, request: RpcRequest) -> RpcResponse:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections; the transport is unusable afterwards."""

    def absolute_url(self, url: str) -> str:
        return absolute_url(None, url)

    async def __aenter__(self) -> AsyncBaseTransport:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


def absolute_url(base: str | None, url: str) -> str:
    """``url`` joined to ``base`` (the server this client talks to) unless it is
    absolute already — it is when the deployment sets its ``public_url``."""
    if url.startswith(("http://", "https://")):
        return url
    if base is None:
        raise InvalidArgumentError(
            "signed URLs need the address browsers reach the server at: set public_url "
            "(nexus serve --public-url, NEXUS_PUBLIC_URL, or connect(config={'public_url': "
            "…}))")
    return base.rstrip("/") + url
