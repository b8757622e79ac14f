"""The engine in-process: requests go through the same dispatch table as the server's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexus.client._transports.base import BaseTransport, RpcRequest, RpcResponse
from nexus.errors import NexusError
from nexus.rpc import dispatch, to_plain

if TYPE_CHECKING:
    from nexus.service import NexusService
    from nexus.types import Principal

__all__ = ["LocalTransport"]


class LocalTransport(BaseTransport):
    """Calls a :class:`~nexus.service.NexusService` in this process as ``principal``."""

    def __init__(self, service: NexusService, principal: Principal, *,
                 owns_service: bool = True) -> None:
        self.service = service
        self.principal = principal
        self._owns_service = owns_service

    def handle(self, request: RpcRequest) -> RpcResponse:
        try:
            result = dispatch(self.service, self.principal, request.method, request.params)
        except NexusError as exc:
            return RpcResponse(error=exc)
        return RpcResponse(result=to_plain(result))

    def close(self) -> None:
        if self._owns_service:
            self.service.close()
