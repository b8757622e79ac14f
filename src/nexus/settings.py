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

from nexus.errors import InvalidArgumentError

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
    #: Serving budgets (docs/http-api.md, "Serving"). A request body that brings no byte
    #: for this many seconds ends with 408 ``request_timeout``.
    body_idle_timeout: float = 30.0
    #: ... and one that averages fewer bytes per second than this after its first
    #: ``body_idle_timeout`` seconds (0: no rate rule, only the idle one).
    body_min_rate: float = 1024.0
    #: Streaming requests (uploads, downloads, large JSON-RPC bodies) one tenant may have
    #: open at once in one process; the next one is a 429 with ``Retry-After``.
    streams_per_tenant: int = 8
    #: Streaming requests of all tenants together; below ``worker_threads`` so that
    #: ``/health``, small calls and other tenants always find a thread.
    streams_total: int = 32
    #: Worker threads that run the (synchronous) engine for requests.
    worker_threads: int = 40
    #: Connections and requests one ``nexus serve`` process holds at once (uvicorn's
    #: ``limit_concurrency``); past it, new requests get 503 at once. Bounds what idle or
    #: slow connections cost before their key is known (each may buffer up to 64 KiB).
    max_connections: int = 2048
    #: Read and denial events are committed in batches: the first of a batch waits at most
    #: this many seconds (the crash window of those events; docs/audit.md, "Durability").
    audit_delay: float = 0.05
    #: Read and denial events waiting at most; past it, recording them waits.
    audit_queue: int = 10_000
    #: The address browsers reach this deployment at (``https://files.example.com``),
    #: for signed URLs; ``None``: the address the signing client used.
    public_url: str | None = None
    #: The longest a signed URL may live, in seconds (7 days, as S3's).
    signed_url_max_lifetime: float = 7 * 24 * 3600.0
    #: Origins whose pages may use signed URLs from a browser (CORS on /api/signed
    #: only); empty: none. ``("*",)``: any.
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.body_idle_timeout > 0:
            raise InvalidArgumentError("body idle timeout must be more than 0 seconds")
        if not self.body_min_rate >= 0:
            raise InvalidArgumentError("body minimum rate must be 0 or more bytes per second")
        if self.streams_per_tenant < 1 or self.streams_total < 1:
            raise InvalidArgumentError("stream caps must be at least 1")
        if self.max_connections < 1:
            raise InvalidArgumentError("max connections must be at least 1")
        if not 0 <= self.audit_delay <= 10:
            raise InvalidArgumentError("audit delay must be between 0 and 10 seconds")
        if self.audit_queue < 1:
            raise InvalidArgumentError("audit queue must hold at least 1 event")
        if self.public_url is not None and not self.public_url.startswith(
                ("http://", "https://")):
            raise InvalidArgumentError("public URL must start with http:// or https://")
        if not 0 < self.signed_url_max_lifetime <= 10 * 365 * 24 * 3600:
            raise InvalidArgumentError("signed URL lifetime must be between 0 and 10 years")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise InvalidArgumentError(
                    f"CORS origin {origin!r} must be '*' or start with http:// or https://")
        if self.streams_total >= self.worker_threads:
            raise InvalidArgumentError(
                f"the stream cap ({self.streams_total}) must be below the number of worker "
                f"threads ({self.worker_threads}): an upload holds a thread while it "
                "streams, and other requests need some")

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
            body_idle_timeout=_number(given, env, "body_idle_timeout", float, 30.0),
            body_min_rate=_number(given, env, "body_min_rate", float, 1024.0),
            streams_per_tenant=_number(given, env, "streams_per_tenant", int, 8),
            streams_total=_number(given, env, "streams_total", int, 32),
            worker_threads=_number(given, env, "worker_threads", int, 40),
            max_connections=_number(given, env, "max_connections", int, 2048),
            audit_delay=_number(given, env, "audit_delay", float, 0.05),
            audit_queue=_number(given, env, "audit_queue", int, 10_000),
            public_url=(given.get("public_url") or env.get("NEXUS_PUBLIC_URL") or "").rstrip(
                "/") or None,
            signed_url_max_lifetime=_number(given, env, "signed_url_max_lifetime", float,
                                            7 * 24 * 3600.0),
            cors_origins=_origins(given.get("cors_origins", env.get("NEXUS_CORS_ORIGINS"))),
        )

    def __repr__(self) -> str:  # never print the secret
        return (f"Settings(data_dir={str(self.data_dir)!r}, database_url="
                f"{_redact(self.database_url)!r}, blob_url={self.blob_url!r})")


def _number(given: Mapping[str, Any], env: Mapping[str, str], name: str,
            kind: type[int] | type[float], default: float) -> Any:
    # The override, else NEXUS_<NAME>, else the default; a bad value names its variable.
    if name in given:
        return kind(given[name])
    variable = f"NEXUS_{name.upper()}"
    raw = env.get(variable)
    if raw is None or raw.strip() == "":
        return kind(default)
    try:
        return kind(raw.strip())
    except ValueError:
        raise InvalidArgumentError(f"{variable} must be a number, not {raw[:40]!r}") from None


def _origins(value: Any) -> tuple[str, ...]:
    # A comma-separated string (flag, variable) or a list (config=).
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip().rstrip("/") for item in items if str(item).strip())


def _redact(url: str | None) -> str | None:
    if url is None or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
