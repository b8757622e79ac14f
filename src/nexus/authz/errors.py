"""Errors raised by the permission engine; both are denials (fail closed)."""

from __future__ import annotations

from nexus.errors import AuthzLimitExceededError

__all__ = ["AuthzDepthExceeded", "AuthzLimitExceeded"]


class AuthzLimitExceeded(AuthzLimitExceededError):
    """A request needed more work than the checker allows; it is denied (fail closed)."""


class AuthzDepthExceeded(AuthzLimitExceeded):
    """Resolution went deeper than ``max_depth`` nested relations (OpenFGA code 2002)."""
