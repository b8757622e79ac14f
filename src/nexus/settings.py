"""Deployment settings, read once at an entry point and passed down.

Nothing below this module reads the environment. Precedence: explicit values (flags,
``config=``) over ``NEXUS_*`` environment variables over defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Settings"]


@dataclass(frozen=True, repr=False)
class Settings:
    """Where a deployment keeps its data."""

    data_dir: Path = Path("nexus-data")
    #: ``None``: SQLite at ``<data_dir>/nexus.db``; else a ``postgresql://`` URL.
    database_url: str | None = None
    #: ``None``: blobs in ``<data_dir>/blobs``.
    blob_url: str | None = None
    #: Deployment secret API keys are hashed under; ``None``: ``<data_dir>/deployment.secret``.
    secret: str | None = None

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
        """Combine ``overrides`` (config dict or CLI flags) with ``NEXUS_*`` variables."""
        env = os.environ if environ is None else environ
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        data_dir = given.get("data_dir") or env.get("NEXUS_DATA_DIR") or "nexus-data"
        return cls(
            data_dir=Path(data_dir).expanduser(),
            database_url=given.get("database_url") or env.get("NEXUS_DATABASE_URL") or None,
            blob_url=given.get("blob_url") or env.get("NEXUS_BLOB_URL") or None,
            secret=given.get("secret") or env.get("NEXUS_SECRET") or None,
        )

    def __repr__(self) -> str:  # never print the secret
        return (f"Settings(data_dir={str(self.data_dir)!r}, database_url="
                f"{_redact(self.database_url)!r}, blob_url={self.blob_url!r})")


def _redact(url: str | None) -> str | None:
    if url is None or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
