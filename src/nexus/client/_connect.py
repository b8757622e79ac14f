"""``nexus.connect()`` and ``nexus.connect_async()``: pick a transport from the
configuration and build the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexus.client._async_client import AsyncNexusClient
from nexus.client._client import NexusClient
from nexus.client._transports.async_http import AsyncHTTPTransport
from nexus.client._transports.async_local import AsyncLocalTransport
from nexus.client._transports.base import AsyncBaseTransport, BaseTransport
from nexus.client._transports.http import HTTPTransport
from nexus.client._transports.local import LocalTransport
from nexus.errors import InvalidArgumentError
from nexus.settings import Settings
from nexus.types import Principal

__all__ = ["connect", "connect_async"]

_REMOTE_KEYS = {"url", "api_key", "timeout"}
_LOCAL_KEYS = {"data_dir", "database_url", "blob_url", "api_key", "secret", "public_url"}


def connect(config: Mapping[str, Any] | None = None, *,
            transport: BaseTransport | None = None) -> NexusClient:
    """Open a client.

    - ``config={"url": "http://host:8080", "api_key": …, "timeout": 30}``: a server.
    - otherwise the embedded engine in ``config["data_dir"]`` (or ``$NEXUS_DATA_DIR``, or
      ``./nexus-data``), metadata in ``config["database_url"]`` (or
      ``$NEXUS_DATABASE_URL``, or SQLite in the data directory). With ``api_key`` it acts
      as that key's principal with full enforcement; without, as the local administrator.
    - ``transport=`` overrides the choice.
    """
    if transport is not None:
        return NexusClient(transport)
    config = dict(config or {})
    remote = _remote(config)
    if remote is not None:
        url, api_key, timeout = remote
        return NexusClient(HTTPTransport(url, api_key, timeout=timeout))
    return NexusClient(_local(config))


def connect_async(config: Mapping[str, Any] | None = None, *,
                  transport: AsyncBaseTransport | None = None) -> AsyncNexusClient:
    """:func:`connect` for asyncio: the same ``config``, an :class:`AsyncNexusClient`
    (use it as ``async with``). Over HTTP one ``httpx.AsyncClient`` carries every call;
    the embedded engine runs each call in a worker thread."""
    if transport is not None:
        return AsyncNexusClient(transport)
    config = dict(config or {})
    remote = _remote(config)
    if remote is not None:
        url, api_key, timeout = remote
        return AsyncNexusClient(AsyncHTTPTransport(url, api_key, timeout=timeout))
    return AsyncNexusClient(AsyncLocalTransport(_local(config)))


def _remote(config: dict[str, Any]) -> tuple[str, str | None, Any] | None:
    """``(url, api_key, timeout)`` of a configuration that names a server, else None."""
    url = config.get("url")
    if not url:
        return None
    unknown = set(config) - _REMOTE_KEYS
    if unknown:
        raise InvalidArgumentError(f"unknown config keys for a remote client: {sorted(unknown)}")
    if not str(url).startswith(("http://", "https://")):
        raise InvalidArgumentError(f"url must start with http:// or https://, not {url!r}")
    return str(url), config.get("api_key"), config.get("timeout", 30.0)


def _local(config: dict[str, Any]) -> LocalTransport:
    unknown = set(config) - _LOCAL_KEYS
    if unknown:
        raise InvalidArgumentError(
            f"unknown config keys for an embedded client: {sorted(unknown)}")
    from nexus.service import bootstrap

    service = bootstrap(Settings.load(config))
    api_key = config.get("api_key")
    if api_key:
        return LocalTransport(service, api_key=str(api_key))
    return LocalTransport(service, Principal.local_admin())
