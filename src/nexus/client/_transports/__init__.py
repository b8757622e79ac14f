"""Transports: how a client reaches an engine."""

from __future__ import annotations

from nexus.client._transports.async_http import AsyncHTTPTransport
from nexus.client._transports.async_local import AsyncLocalTransport
from nexus.client._transports.base import (
    AsyncBaseTransport,
    BaseTransport,
    RpcRequest,
    RpcResponse,
)
from nexus.client._transports.http import HTTPTransport
from nexus.client._transports.local import LocalTransport

__all__ = [
    "AsyncBaseTransport",
    "AsyncHTTPTransport",
    "AsyncLocalTransport",
    "BaseTransport",
    "HTTPTransport",
    "LocalTransport",
    "RpcRequest",
    "RpcResponse",
]
