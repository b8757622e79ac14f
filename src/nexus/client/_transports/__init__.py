"""Transports: how a client reaches an engine."""

from __future__ import annotations

from nexus.client._transports.base import BaseTransport, RpcRequest, RpcResponse
from nexus.client._transports.http import HTTPTransport
from nexus.client._transports.local import LocalTransport

__all__ = ["BaseTransport", "HTTPTransport", "LocalTransport", "RpcRequest", "RpcResponse"]
