"""The SDK client and its transports."""

from __future__ import annotations

from nexus.client._client import NexusClient
from nexus.client._connect import connect
from nexus.client._transports import (
    BaseTransport,
    HTTPTransport,
    LocalTransport,
    RpcRequest,
    RpcResponse,
)

__all__ = [
    "BaseTransport",
    "HTTPTransport",
    "LocalTransport",
    "NexusClient",
    "RpcRequest",
    "RpcResponse",
    "connect",
]
