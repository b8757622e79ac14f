"""The per-deployment secret that API keys are hashed under."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["load_or_create_secret"]

SECRET_FILE = "deployment.secret"


def load_or_create_secret(data_dir: Path, configured: str | None = None) -> bytes:
    """``configured`` (``NEXUS_SECRET``) if given, else ``<data_dir>/deployment.secret``,
    created with mode 0600 on first use.

    Several servers sharing one database must share this secret: set ``NEXUS_SECRET``
    on all of them.
    """
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its secret
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
        handle.flush()
        os.fsync(handle.fileno())
    return value
