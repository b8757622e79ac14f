"""The enforcement point: every operation asks here, and nowhere else, if it may run.

:class:`AccessGate` answers two kinds of question for a :class:`~nexus.types.Principal`.

Paths — an action on a normalised path:

- the system administrator passes (the audit log records each bypass);
- the system partition (paths outside ``/tenants/<id>``) is for administrators only;
- everyone else needs the action's relation on the path in the ReBAC model — inherited
  from any ancestor directory — evaluated by the :class:`PermissionEngine`.

Roles — who the principal is to a tenant: system administrator, tenant administrator
(an ``owner`` of ``/tenants/<id>``, in that tenant's live incarnation), member, and
what follows from them (key administrator, model writer, audit reader, metrics reader,
who may hand a path out as a signed URL).

No other module reads ``principal.is_admin`` or compares a principal's tenant with
anything (``tests/security/test_policy.py`` fails if one does): services ask here.
Denials never say whether the path exists, so other tenants' names cannot be probed.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from nexus import paths
from nexus.errors import NexusPermissionError
from nexus.service.permissions import PermissionEngine
from nexus.service.share_alias import alias_tenants
from nexus.types import Principal

if TYPE_CHECKING:  # the audit log asks this module its role questions
    from nexus.service.audit import AuditLog
    from nexus.service.tenant_state import TenantStates

__all__ = ["AccessGate", "Action"]


class Action(StrEnum):
    """What an operation needs on a path: the relation name in the model."""

    READ = "can_read"
    WRITE = "can_write"
    OWN = "owner"


class AccessGate:
    """Decides whether a principal may perform an action on paths."""

    def __init__(self, engine: PermissionEngine, audit: AuditLog,
                 states: TenantStates | None = None) -> None:
        self._engine = engine
        self._audit = audit
        self._states = states

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

    def require(self, principal: Principal, action: Action, path: str, *,
                shown: str | None = None) -> None:
        """Raise :class:`NexusPermissionError` unless :meth:`allowed`. The error names
        ``shown`` (the path as the caller sent it, when ``path`` is what it resolved to)
        and nothing else: a denial tells no more than the request did."""
        if not self.allowed(principal, action, path):
            self._audit.record_now(principal, f"deny.{action.value}", path, result="denied")
            shown = path if shown is None else shown
            raise NexusPermissionError(f"permission denied: {action.value} on {shown}",
                                       path=shown, permission=action.value)

    def readable(self, principal: Principal, targets: Sequence[str]) -> list[bool]:
        """``can_read`` on each path (one batch per listing page)."""
        return self.allowed_many(principal, Action.READ, targets)

    # -- roles -------------------------------------------------------------------------

    @staticmethod
    def is_system_admin(principal: Principal) -> bool:
        """The deployment's administrator (a key made with ``is_admin=True``)."""
        return principal.is_admin

    def require_system_admin(self, principal: Principal, what: str) -> None:
        """Refuse anyone but the system administrator: ``only the system administrator
        <what>``."""
        if not principal.is_admin:
            raise NexusPermissionError(f"permission denied: only the system administrator "
                                       f"{what}")

    def is_member(self, principal: Principal, tenant_id: str | None) -> bool:
        """A principal of ``tenant_id``'s live incarnation (not the system administrator,
        who belongs to no tenant)."""
        return (tenant_id is not None and principal.tenant_id == tenant_id
                and self._engine.incarnation_of(principal) is not None)

    def may_act_in(self, principal: Principal, tenant_id: str) -> bool:
        """The system administrator or a member: who may address ``tenant_id``'s own
        objects (its tuples, its alias directories) at all."""
        return principal.is_admin or self.is_member(principal, tenant_id)

    def require_may_act_in(self, principal: Principal, tenant_id: str,
                           message: str | None = None) -> None:
        if not self.may_act_in(principal, tenant_id):
            raise NexusPermissionError(message or f"permission denied: not a member of "
                                       f"tenant {tenant_id}")

    def is_tenant_admin(self, principal: Principal, tenant_id: str) -> bool:
        """System administrator, or an ``owner`` of ``/tenants/<tenant_id>`` in that
        tenant. Manages the tenant's keys, model, shares, and reads its audit log."""
        if principal.is_admin:
            return True
        return self.is_member(principal, tenant_id) and self.allowed(
            principal, Action.OWN, paths.tenant_root(tenant_id))

    def require_tenant_admin(self, principal: Principal, tenant_id: str,
                             message: str | None = None) -> None:
        paths.validate_tenant_id(tenant_id)
        if not self.is_tenant_admin(principal, tenant_id):
            raise NexusPermissionError(message or f"permission denied: not an administrator "
                                       f"of tenant {tenant_id}")

    def may_manage_key(self, principal: Principal, key_tenant: str) -> bool:
        """Keys are managed by the system administrator and, for their own tenant's
        keys, its administrators (``key_tenant`` is the key row's tenant)."""
        return self.is_tenant_admin(principal, key_tenant)

    def may_read_audit(self, principal: Principal, log: str) -> bool:
        """The system log is the administrator's; a tenant's log its administrators'."""
        if log == paths.SYSTEM_PARTITION:
            return principal.is_admin
        return self.is_tenant_admin(principal, log)

    def may_read_metrics(self, principal: Principal) -> bool:
        """Deployment-wide metrics are the system administrator's."""
        return principal.is_admin

    def require_public_sharing(self, principal: Principal, path: str, resolved: str, *,
                               signing: bool) -> None:
        """Refuse a signed URL for ``path`` (``resolved``: what a share alias names)
        unless every tenant involved allows public sharing — the signer's, the path's,
        and the source of a share — by ``settings.allow_public_sharing`` (unset: yes)."""
        involved = {principal.tenant_id, paths.tenant_of(path), paths.tenant_of(resolved)}
        involved |= set(alias_tenants(path) or ())
        for tenant in sorted(t for t in involved if t is not None):
            state = self._states.get(tenant) if self._states is not None else None
            if state is not None and not state.allow_public_sharing:
                doing = "refuses signed URLs" if signing else "no longer allows signed URLs"
                raise NexusPermissionError(
                    f"tenant {tenant} {doing} (settings.allow_public_sharing is false)",
                    path=path, tenant_id=tenant)

    def may_grant_across_tenants(self, principal: Principal) -> bool:
        """Naming another tenant's principals in a tuple (beyond a share) is the system
        administrator's."""
        return principal.is_admin
