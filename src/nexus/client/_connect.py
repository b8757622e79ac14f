"""``nexus.connect()``: pick a transport from the configuration and build the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexus.client._client import NexusClient
from nexus.client._transports.base import BaseTransport
from nexus.client._transports.http import HTTPTransport
from nexus.client._transports.local import LocalTransport
from nexus.errors import InvalidArgumentError
from nexus.settings import Settings
from nexus.types import Principal

__all__ = ["connect"]

_REMOTE_KEYS = {"url", "api_key", "timeout"}
_LOCAL_KEYS = {"data_dir", "database_url", "blob_url", "api_key", "secret"}


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
    config = dict(config or {})
    if transport is not None:
        return NexusClient(transport)
    url = config.get("url")
    if url:
        unknown = set(config) - _REMOTE_KEYS
        if unknown:
            raise InvalidArgumentError(
                f"unknown config keys for a remote client: {sorted(unknown)}")
        if not str(url).startswith(("http://", "https://")):
            raise InvalidArgumentError(f"url must start with http:// or https://, not {url!r}")
        timeout = config.get("timeout", 30.0)
        return NexusClient(HTTPTransport(str(url), config.get("api_key"), timeout=timeout))
    unknown = set(config) - _LOCAL_KEYS
    if unknown:
        raise InvalidArgumentError(
            f"unknown config keys for an embedded client: {sorted(unknown)}")
    from nexus.service import bootstrap

    service = bootstrap(Settings.load(config))
    api_key = config.get("api_key")
    if api_key:
        return NexusClient(LocalTransport(service, api_key=str(api_key)))
    return NexusClient(LocalTransport(service, Principal.local_admin()))
