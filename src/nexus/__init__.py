"""Nexus: a multi-tenant file server with ReBAC, quotas and tenant lifecycle.

``nexus.connect()`` opens a client — embedded in-process, or to a server by URL;
``nexus.connect_async()`` opens the same client for asyncio.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from nexus.client import AsyncNexusClient, NexusClient, connect, connect_async
from nexus.errors import (
    AuthenticationError,
    AuthzLimitExceededError,
    ConflictError,
    DeploymentMismatchError,
    DirectoryNotEmptyError,
    InternalError,
    InvalidArgumentError,
    InvalidPathError,
    LimitExceededError,
    NexusError,
    NexusFileExistsError,
    NexusFileNotFoundError,
    NexusIsADirectoryError,
    NexusNotADirectoryError,
    NexusPermissionError,
    PayloadTooLargeError,
    QuotaExceededError,
    RangeNotSatisfiableError,
    RateLimitedError,
    RequestTimeoutError,
    TenantSuspendedError,
    UnavailableError,
)

try:
    __version__ = version("nexus-saas")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AsyncNexusClient",
    "AuthenticationError",
    "AuthzLimitExceededError",
    "ConflictError",
    "DeploymentMismatchError",
    "DirectoryNotEmptyError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidPathError",
    "LimitExceededError",
    "NexusClient",
    "NexusError",
    "NexusFileExistsError",
    "NexusFileNotFoundError",
    "NexusIsADirectoryError",
    "NexusNotADirectoryError",
    "NexusPermissionError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RangeNotSatisfiableError",
    "RateLimitedError",
    "RequestTimeoutError",
    "TenantSuspendedError",
    "UnavailableError",
    "__version__",
    "connect",
    "connect_async",
]
