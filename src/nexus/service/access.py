"""The enforcement point: every operation asks here, and nowhere else, if it may run.

:class:`AccessGate` answers for a :class:`~nexus.types.Principal`, an action and a
normalised path:

- the system administrator passes (the audit log records each bypass);
- the system partition (paths outside ``/tenants/<id>``) is for administrators only;
- everyone else needs the action's relation on the path in the ReBAC model — inherited
  from any ancestor directory — evaluated by the :class:`PermissionEngine`.

Denials never say whether the path exists, so other tenants' names cannot be probed.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from nexus import paths
from nexus.errors import NexusPermissionError
from nexus.service.audit import AuditLog
from nexus.service.permissions import PermissionEngine
from nexus.types import Principal

__all__ = ["AccessGate", "Action"]


class Action(StrEnum):
    """What an operation needs on a path: the relation name in the model."""

    READ = "can_read"
    WRITE = "can_write"
    OWN = "owner"


class AccessGate:
    """Decides whether a principal may perform an action on paths."""

    def __init__(self, engine: PermissionEngine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    def allowed(self, principal: Principal, action: Action, path: str) -> bool:
        """True if ``principal`` may ``action`` on ``path``. Fails closed."""
        return self.allowed_many(principal, action, [path])[0]

    def allowed_many(self, principal: Principal, action: Action,
                     targets: Sequence[str]) -> list[bool]:
        """:meth:`allowed` for many paths, evaluated in batches per tenant."""
        if principal.is_admin:
            return [True] * len(targets)
        answers = [False] * len(targets)
        by_tenant: dict[str, list[int]] = {}
        for i, path in enumerate(targets):
            tenant = paths.tenant_of(path)
            if tenant is not None:
                by_tenant.setdefault(tenant, []).append(i)
        for indexes in by_tenant.values():
            results = self._engine.check_paths(principal, action.value,
                                               [targets[i] for i in indexes])
            for i, ok in zip(indexes, results, strict=True):
                answers[i] = ok
        return answers

    def require(self, principal: Principal, action: Action, path: str) -> None:
        """Raise :class:`NexusPermissionError` unless :meth:`allowed`."""
        if not self.allowed(principal, action, path):
            self._audit.record_now(principal, f"deny.{action.value}", path, result="denied")
            raise NexusPermissionError(f"permission denied: {action.value} on {path}",
                                       path=path, permission=action.value)

    def readable(self, principal: Principal, targets: Sequence[str]) -> list[bool]:
        """``can_read`` on each path (one batch per listing page)."""
        return self.allowed_many(principal, Action.READ, targets)
