"""The SDK clients (sync and async) and their transports."""

from __future__ import annotations

from nexus.client._async_client import AsyncNexusClient
from nexus.client._client import NexusClient
from nexus.client._connect import connect, connect_async
from nexus.client._transports import (
    AsyncBaseTransport,
    AsyncHTTPTransport,
    AsyncLocalTransport,
    BaseTransport,
    HTTPTransport,
    LocalTransport,
    RpcRequest,
    RpcResponse,
)

__all__ = [
    "AsyncBaseTransport",
    "AsyncHTTPTransport",
    "AsyncLocalTransport",
    "AsyncNexusClient",
    "BaseTransport",
    "HTTPTransport",
    "LocalTransport",
    "NexusClient",
    "RpcRequest",
    "RpcResponse",
    "connect",
    "connect_async",
]
