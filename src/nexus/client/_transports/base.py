"""The transport contract: one request in, one response out.

A transport moves an :class:`RpcRequest` to a Nexus engine and brings back an
:class:`RpcResponse`. It does nothing else: typed methods, defaults, pagination and
error decoding live in the client, so every transport behaves the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from nexus.errors import NexusError

__all__ = ["BaseTransport", "RpcRequest", "RpcResponse"]


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

    def __enter__(self) -> BaseTransport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
