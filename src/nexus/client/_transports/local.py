"""The engine in-process: requests go through the same dispatch table as the server's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexus.client._transports.base import BaseTransport, RpcRequest, RpcResponse, absolute_url
from nexus.errors import NexusError
from nexus.rpc import dispatch, to_plain

if TYPE_CHECKING:
    from nexus.service import NexusService
    from nexus.types import Principal

__all__ = ["LocalTransport"]


class LocalTransport(BaseTransport):
    """Calls a :class:`~nexus.service.NexusService` in this process.

    With ``api_key`` every request is authenticated exactly as the server does it (a
    revoked key stops working at once); with ``principal`` — the local administrator
    for an embedded client opened without a key — that principal is used as given.
    """

    def __init__(self, service: NexusService, principal: Principal | None = None, *,
                 api_key: str | None = None, owns_service: bool = True) -> None:
        if (principal is None) == (api_key is None):
            raise ValueError("pass exactly one of principal and api_key")
        self.service = service
        self.principal = principal
        self._api_key = api_key
        self._owns_service = owns_service

    def handle(self, request: RpcRequest) -> RpcResponse:
        try:
            principal = self.principal or self.service.keys.authenticate(self._api_key)
            result = dispatch(self.service, principal, request.method, request.params)
        except NexusError as exc:
            return RpcResponse(error=exc)
        return RpcResponse(result=to_plain(result))

    def absolute_url(self, url: str) -> str:
        return absolute_url(self.service.settings.public_url, url)

    def close(self) -> None:
        if self._owns_service:
            self.service.close()
