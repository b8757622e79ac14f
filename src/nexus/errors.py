"""The Nexus exception tree and the one table that maps each error to the wire.

::

    NexusError                      base; every error has a stable ``code``
      client errors (the caller can fix them)
        InvalidArgumentError        also a ValueError
          InvalidPathError          a path broke a rule of nexus.paths
          LimitExceededError        a request would cost more than one may
            PayloadTooLargeError    a body larger than the request may send
        NexusFileNotFoundError      also a FileNotFoundError
        NexusFileExistsError        also a FileExistsError
        NexusNotADirectoryError     also a NotADirectoryError
        NexusIsADirectoryError      also an IsADirectoryError
        DirectoryNotEmptyError      also an OSError
        ConflictError               a precondition (etag) failed
        NexusPermissionError        also a PermissionError
        AuthenticationError         no or bad credential
        QuotaExceededError          a hard limit would be exceeded
        RateLimitedError            too many requests
        TenantSuspendedError        the tenant is suspended
        DeploymentMismatchError     no deployment here, or its parts are different ones'
      server errors
        UnavailableError            a dependency (database, blob store) is unreachable
        InternalError               anything unexpected; details are logged, never sent

Every class carries ``code`` (a stable string), ``http_status`` and ``exit_code``; the
server encodes errors with :func:`error_payload` and clients decode them with
:func:`error_from_payload`, so ``except nexus.NexusFileNotFoundError`` behaves the same
in-process and over HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "AuthzLimitExceededError",
    "ConflictError",
    "DeploymentMismatchError",
    "DirectoryNotEmptyError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidPathError",
    "NexusError",
    "NexusFileExistsError",
    "NexusFileNotFoundError",
    "NexusIsADirectoryError",
    "NexusNotADirectoryError",
    "NexusPermissionError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RateLimitedError",
    "TenantSuspendedError",
    "UnavailableError",
    "error_class_for_code",
    "error_from_payload",
    "error_payload",
]


class NexusError(Exception):
    """Base class of every error Nexus raises on purpose."""

    code: ClassVar[str] = "nexus_error"
    http_status: ClassVar[int] = 400
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


class InvalidArgumentError(NexusError, ValueError):
    """A parameter has the wrong type or an unacceptable value."""

    code = "invalid_argument"
    exit_code = 2


class InvalidPathError(InvalidArgumentError):
    """A virtual path broke one of the rules in :mod:`nexus.paths`; ``rule`` names it."""

    code = "invalid_path"
    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, rule: str = "invalid") -> None:
        super().__init__(message, path=path, rule=rule)
        self.path = path
        self.rule = rule


class RangeNotSatisfiableError(InvalidArgumentError):
    """A ``Range`` header names no byte of the file (RFC 9110 §15.5.17)."""

    code = "range_not_satisfiable"
    http_status = 416


class LimitExceededError(InvalidArgumentError):
    """A request would cost more than the server lets one request cost: too many items
    in a batch, a permission check past its step budget, a model whose evaluation is
    unbounded. ``limit`` names the limit (see docs/http-api.md, "Limits")."""

    code = "limit_exceeded"
    http_status = 422


class PayloadTooLargeError(LimitExceededError):
    """A request body is larger than the request may send (a signed upload URL's
    ``max_size``)."""

    code = "payload_too_large"
    http_status = 413


class AuthzLimitExceededError(LimitExceededError):
    """A permission check needed more evaluation steps, tuple reads or depth than one
    check may use; it is denied (fail closed), never left running."""

    code = "authz_limit_exceeded"
    http_status = 422


class RequestTimeoutError(InvalidArgumentError):
    """The client sent its request body too slowly (or stopped sending it)."""

    code = "request_timeout"
    http_status = 408


class NexusFileNotFoundError(NexusError, FileNotFoundError):
    """The path does not exist (and the caller may know that)."""

    code = "not_found"
    http_status = 404
    exit_code = 3


class NexusFileExistsError(NexusError, FileExistsError):
    """The path exists and the operation required that it did not."""

    code = "already_exists"
    http_status = 409
    exit_code = 3


class NexusNotADirectoryError(NexusError, NotADirectoryError):
    """A directory was required but the path is a file."""

    code = "not_a_directory"
    http_status = 409
    exit_code = 3


class NexusIsADirectoryError(NexusError, IsADirectoryError):
    """A file was required but the path is a directory."""

    code = "is_a_directory"
    http_status = 409
    exit_code = 3


class DirectoryNotEmptyError(NexusError, OSError):
    """``rmdir`` without ``recursive`` on a directory that has entries."""

    code = "directory_not_empty"
    http_status = 409
    exit_code = 3


class ConflictError(NexusError):
    """A precondition failed: ``if_match`` etag mismatch, or an illegal state change."""

    code = "conflict"
    http_status = 412
    exit_code = 3


class NexusPermissionError(NexusError, PermissionError):
    """The caller's principal may not perform this operation."""

    code = "permission_denied"
    http_status = 403
    exit_code = 4


class AuthenticationError(NexusError):
    """No credential, or one that is unknown, revoked or expired."""

    code = "unauthenticated"
    http_status = 401
    exit_code = 4


class QuotaExceededError(NexusError):
    """The operation would exceed a hard limit of the tenant."""

    code = "quota_exceeded"
    http_status = 413
    exit_code = 5


class RateLimitedError(NexusError):
    """The tenant sent more requests than its plan allows; retry later."""

    code = "rate_limited"
    http_status = 429
    exit_code = 5


class TenantSuspendedError(NexusError):
    """The tenant is suspended: its keys are refused until it is reactivated."""

    code = "tenant_suspended"
    http_status = 403
    exit_code = 4


class DeploymentMismatchError(NexusError):
    """The database, data directory and blob store are not one deployment: one of them
    belongs to another deployment, or (maintenance commands) there is no deployment."""

    code = "deployment_mismatch"
    http_status = 409
    exit_code = 3


class UnavailableError(NexusError):
    """A dependency of the server (database, blob store) cannot be reached."""

    code = "unavailable"
    http_status = 503
    exit_code = 6


class InternalError(NexusError):
    """An unexpected failure; the message is deliberately opaque."""

    code = "internal"
    http_status = 500
    exit_code = 6


_BY_CODE: dict[str, type[NexusError]] = {
    cls.code: cls
    for cls in (
        NexusError,
        InvalidPathError,
        InvalidArgumentError,
        RangeNotSatisfiableError,
        LimitExceededError,
        PayloadTooLargeError,
        AuthzLimitExceededError,
        RequestTimeoutError,
        NexusFileNotFoundError,
        NexusFileExistsError,
        NexusNotADirectoryError,
        NexusIsADirectoryError,
        DirectoryNotEmptyError,
        ConflictError,
        NexusPermissionError,
        AuthenticationError,
        QuotaExceededError,
        RateLimitedError,
        TenantSuspendedError,
        DeploymentMismatchError,
        UnavailableError,
        InternalError,
    )
}


def error_class_for_code(code: str) -> type[NexusError]:
    """The exception class for a wire ``code``; unknown codes decode as :class:`NexusError`."""
    return _BY_CODE.get(code, NexusError)


def error_payload(exc: NexusError) -> dict[str, Any]:
    """Encode an error for the wire: ``{"code", "message", "details"}``."""
    return {"code": exc.code, "message": exc.message, "details": _jsonable(exc.details)}


def error_from_payload(payload: dict[str, Any]) -> NexusError:
    """Rebuild the exception that :func:`error_payload` encoded, with the same class."""
    cls = error_class_for_code(str(payload.get("code", "")))
    message = str(payload.get("message", "error"))
    details = payload.get("details") or {}
    exc = cls.__new__(cls)
    NexusError.__init__(exc, message, **details)
    for name, value in details.items():
        if name not in ("message", "details"):
            setattr(exc, name, value)
    return exc


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | None) else str(v)
            for k, v in details.items()}
