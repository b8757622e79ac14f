"""``nexus.connect()``: pick a transport from the configuration and build the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexus.client._client import NexusClient
from nexus.client._transports.base import BaseTransport
from nexus.client._transports.local import LocalTransport
from nexus.errors import InvalidArgumentError
from nexus.settings import Settings
from nexus.types import Principal

__all__ = ["connect"]


def connect(config: Mapping[str, Any] | None = None, *,
            transport: BaseTransport | None = None) -> NexusClient:
    """Open a client.

    - ``config={"url": "http://…", "api_key": …}``: a remote server.
    - otherwise the embedded engine in ``config["data_dir"]`` (or ``$NEXUS_DATA_DIR``, or
      ``./nexus-data``), with metadata in ``config["database_url"]`` (or
      ``$NEXUS_DATABASE_URL``, or SQLite in the data directory). Without an API key the
      embedded client acts as the local administrator.
    - ``transport=`` overrides the choice.
    """
    config = dict(config or {})
    if transport is not None:
        return NexusClient(transport)
    url = config.get("url")
    if url:
        raise InvalidArgumentError(
            "remote servers are not supported by this build yet; omit 'url' to use the "
            "embedded engine")
    if config.get("api_key"):
        raise InvalidArgumentError(
            "API keys are not supported by the embedded engine of this build yet")
    from nexus.service import bootstrap

    settings = Settings.load(config)
    return NexusClient(LocalTransport(bootstrap(settings), Principal.local_admin()))
