"""The enforcement point: every file operation asks here, and nowhere else, if it may run.

:class:`AccessGate` answers for a :class:`~nexus.types.Principal`, an action and a
normalised path. Administrators pass (the audit log records the bypass once it exists).
Everyone else is confined to their own tenant's tree; the ReBAC engine refines that to
per-path relations.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from nexus.errors import NexusPermissionError
from nexus.paths import is_within, tenant_of, tenant_root
from nexus.types import Principal

__all__ = ["AccessGate", "Action"]


class Action(StrEnum):
    """What an operation needs on a path."""

    READ = "can_read"
    WRITE = "can_write"
    OWN = "owner"


class AccessGate:
    """Decides whether a principal may perform an action on a path."""

    def allowed(self, principal: Principal, action: Action, path: str) -> bool:
        """True if ``principal`` may ``action`` on ``path``. Fails closed."""
        if principal.is_admin:
            return True
        if principal.tenant_id is None:
            return False
        return tenant_of(path) == principal.tenant_id and is_within(
            path, tenant_root(principal.tenant_id))

    def require(self, principal: Principal, action: Action, path: str) -> None:
        """Raise :class:`NexusPermissionError` unless :meth:`allowed`.

        The message never says whether the path exists, so a denial cannot be used to
        probe another tenant's file names.
        """
        if not self.allowed(principal, action, path):
            raise NexusPermissionError(f"permission denied: {action.value} on {path}",
                                       path=path, permission=action.value)

    def readable(self, principal: Principal, paths: Sequence[str]) -> list[bool]:
        """:meth:`allowed` for ``READ`` on many paths at once (one batch per listing page)."""
        return [self.allowed(principal, Action.READ, p) for p in paths]
