"""Tenants as records: create, read, list, update; usage, billing, fleet metrics; the live
``.tenant.json``; and :meth:`TenantService.admit`, the per-request tenant gate (state and
rate limit) that runs before any permission check.

Who may call what: the system administrator everything; a tenant's administrator (an
``owner`` of ``/tenants/<id>``) may read its own tenant, usage and bill.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from nexus import paths
from nexus.errors import (
    InvalidArgumentError,
    NexusFileExistsError,
    NexusFileNotFoundError,
    QuotaExceededError,
    RateLimitedError,
)
from nexus.service import incarnations
from nexus.service.access import AccessGate
from nexus.service.audit import AuditLog
from nexus.service.rate_limits import SharedRateLimiter, fold_api_calls
from nexus.service.tenant_state import (
    AUDIT_READ_MODES,
    TenantStates,
    refuse_blocked,
    trial_over,
)
from nexus.store import (
    Database,
    FileRepository,
    TenantRecord,
    TenantRepository,
    Usage,
    UsageRepository,
)
from nexus.tenancy import GIB, PLANS, Limits, effective_limits
from nexus.tenancy.lifecycle import STATUSES, check_transition
from nexus.tenancy.plans import plan_named, validate_overrides
from nexus.tenancy.ratelimit import Limiter
from nexus.types import Principal, iso_time, parse_timestamp

__all__ = ["STANDARD_DIRECTORIES", "TENANT_DOCUMENT", "TenantService", "is_tenant_document",
           "limits_of", "quota_error", "register_tenant"]

TENANT_DOCUMENT = ".tenant.json"
STANDARD_DIRECTORIES = ("users", "shared", "uploads", "exports")
_DOCUMENT_FIELDS = {"tenant_id", "name", "plan", "status", "created_at", "trial_ends_at",
                    "limits", "usage", "settings", "status_reason"}
#: How often a process folds counted requests into usage (any process may; they agree).
_FOLD_EVERY = 1.0


def register_tenant(conn: Any, tenant_id: str, now: float, **fields: Any) -> str | None:
    """The one function that creates a tenant record: a new incarnation (its token is
    returned; ``None`` if the tenant exists), zeroed counters and the root directory.

    Every path that brings a tenant into being — ``create_tenant``, an administrator's
    ``mkdir /tenants/<id>``, ``import_tenant`` — comes through here, so none can revive
    an old incarnation's references."""
    token = TenantRepository(conn).register(paths.validate_tenant_id(tenant_id),
                                            incarnations.mint(), now, **fields)
    if token is not None:
        files = FileRepository(conn)
        files.insert_directory(paths.SYSTEM_PARTITION, paths.TENANTS_ROOT, "/", now)
        files.insert_directory(tenant_id, paths.tenant_root(tenant_id), paths.TENANTS_ROOT,
                               now)
    return token


def quota_error(resource: str, limit: int, current: int, requested: int) -> QuotaExceededError:
    """The error for a refused charge, naming resource, limit and current usage."""
    shown = {"storage": f"{limit / GIB:g} GB ({limit} bytes)"}.get(resource, str(limit))
    return QuotaExceededError(
        f"quota exceeded: {resource} limit is {shown}, {current} in use, "
        f"{requested} more requested", resource=resource, limit=limit, current=current,
        requested=requested)


def is_tenant_document(path: str) -> str | None:
    """The tenant whose live record ``path`` is (``/tenants/<id>/.tenant.json``), or None."""
    tenant = paths.tenant_of(path)
    if tenant is not None and path == f"{paths.tenant_root(tenant)}/{TENANT_DOCUMENT}":
        return tenant
    return None


def _storage_gb(nbytes: int) -> float:
    return round(nbytes / GIB, 6)


class TenantService:
    """Tenant records, usage and the request-admission gate."""

    def __init__(self, *, db: Database, gate: AccessGate, states: TenantStates, audit: AuditLog,
                 clock: Callable[[], float] = time.time,
                 limiter: Limiter | None = None) -> None:
        self._db = db
        self._gate = gate
        self._states = states
        self._audit = audit
        self._clock = clock
        self._limiter = limiter or SharedRateLimiter(db)
        self._last_fold = 0.0
        self._lock = threading.Lock()

    def incarnation(self, tenant_id: str) -> str | None:
        """The tenant's current incarnation token (``None``: no such tenant)."""
        return self._states.incarnation(tenant_id)

    # -- admission (every request of a tenant principal) -------------------------------

    def admit(self, principal: Principal) -> None:
        """Refuse keys of a suspended, cancelled or expired-trial tenant
        (:class:`TenantSuspendedError`), apply the tenant's rate limit
        (:class:`RateLimitedError`) and count the request."""
        tenant = principal.tenant_id
        if tenant is None or self._gate.is_system_admin(principal):
            return
        state = self._states.live(tenant, principal.incarnation)
        if trial_over(state, self._clock()):
            self._end_trial(tenant)
            state = self._states.get(tenant) or state
        refuse_blocked(tenant, state.status, state.status_reason)
        plan = PLANS.get(state.plan, PLANS["free"])
        wait = self._limiter.admit(tenant, plan.rate_per_second, plan.burst, calls=1)
        if wait > 0:
            raise RateLimitedError(f"tenant {tenant} exceeded {plan.rate_per_second:g} "
                                   "requests per second; retry later",
                                   retry_after=max(1, round(wait + 0.5)))
        with self._lock:
            due = self._clock() - self._last_fold >= _FOLD_EVERY
            if due:
                self._last_fold = self._clock()
        if due:
            self.flush_api_calls()

    def charge_rate(self, principal: Principal, cost: int) -> None:
        """Take ``cost`` more tokens of the tenant's rate limit for a call that
        :meth:`admit` let in as one request but that does the work of ``cost + 1``
        (a batch of items): :class:`RateLimitedError` if the bucket cannot pay, and then
        nothing is taken (see :class:`~nexus.tenancy.RateLimiter` for a cost above the
        burst). The system administrator and principals of no tenant are not limited."""
        tenant = principal.tenant_id
        if cost <= 0 or tenant is None or self._gate.is_system_admin(principal):
            return
        state = self._states.get(tenant)
        plan = PLANS.get(state.plan if state is not None else "free", PLANS["free"])
        # admit() took this call's first token already.
        wait = self._limiter.admit(tenant, plan.rate_per_second, plan.burst, cost, paid=1)
        if wait > 0:
            raise RateLimitedError(f"tenant {tenant}: this call counts as {cost + 1} requests "
                                   f"and exceeds {plan.rate_per_second:g} requests per "
                                   "second; retry later", retry_after=max(1, round(wait + 0.5)),
                                   cost=cost + 1)

    def flush_api_calls(self) -> None:
        """Fold the requests admission counted (exactly, in the shared buckets) into the
        usage counters and the day's row. Usage reads add what is not folded yet, so this
        decides only the day a request is billed on (at most :data:`_FOLD_EVERY` late)."""
        fold_api_calls(self._db, self._clock())

    def _end_trial(self, tenant: str) -> None:
        # Checked lazily on the tenant's next request; the record tells why.
        def _work(conn: Connection) -> Any:
            repo = TenantRepository(conn)
            record = repo.get(tenant, for_update=True)
            if record is not None and record.status == "trial":
                repo.update(tenant, status="suspended", status_reason="trial ended",
                            updated_at=self._clock())
                self._audit.record(conn, Principal("nexus", None, is_admin=True),
                                   "tenant.suspended", paths.tenant_root(tenant),
                                   detail="trial ended")

        self._db.run(_work)
        self._states.forget(tenant)

    # -- records -----------------------------------------------------------------------

    def create_tenant(self, principal: Principal, tenant_id: str, name: str | None = None,
                      plan: str = "free", status: str = "active",
                      trial_days: float | None = None, settings: dict[str, Any] | None = None,
                      **limit_overrides: Any) -> dict[str, Any]:
        """Register a tenant and create ``/tenants/<id>`` with its standard folders."""
        self._gate.require_system_admin(principal, "manages tenants")
        paths.validate_tenant_id(tenant_id)
        plan_named(plan)
        _check_status(status)
        settings = _check_settings(settings or {})
        overrides = validate_overrides(limit_overrides)
        unknown = set(limit_overrides) - set(overrides)
        if unknown:
            raise InvalidArgumentError(f"unknown tenant options: {sorted(unknown)}")
        now = self._clock()
        trial_ends = None if trial_days is None else now + float(trial_days) * 86400
        root = paths.tenant_root(tenant_id)
        def _work(conn: Connection) -> Any:
            created = register_tenant(
                conn, tenant_id, now, name=name, plan=plan, status=status,
                limit_overrides=overrides, settings=settings, trial_ends_at=trial_ends)
            if created is None:
                raise NexusFileExistsError(f"tenant {tenant_id!r} already exists")
            files = FileRepository(conn)
            for sub in STANDARD_DIRECTORIES:
                files.insert_directory(tenant_id, f"{root}/{sub}", root, now)
            self._audit.record(conn, principal, "tenant.create", root, detail=plan)

        self._db.run(_work)
        return self.get_tenant(principal, tenant_id)

    def get_tenant(self, principal: Principal, tenant_id: str) -> dict[str, Any]:
        """The tenant's record in the guide's ``.tenant.json`` shape, with live usage."""
        self._gate.require_tenant_admin(principal, tenant_id)
        with self._db.read() as conn:
            record = TenantRepository(conn).get(tenant_id)
            usage = UsageRepository(conn).get(tenant_id)
        if record is None:
            raise NexusFileNotFoundError(f"no tenant {tenant_id!r}")
        return _document(record, usage)

    def list_tenants(self, principal: Principal, plan: str | None = None,
                     status: str | None = None, limit: int = 100,
                     cursor: str | None = None) -> dict[str, Any]:
        """A page of tenants: ``{"tenants": [...], "next_cursor": str | None}``."""
        self._gate.require_system_admin(principal, "manages tenants")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidArgumentError("limit must be between 1 and 1000")
        with self._db.read() as conn:
            records = TenantRepository(conn).list(plan=plan, status=status, after=cursor,
                                                  limit=limit)
            usage = UsageRepository(conn)
            docs = [_document(r, usage.get(r.tenant_id)) for r in records]
        next_cursor = records[-1].tenant_id if len(records) == limit else None
        return {"tenants": docs, "next_cursor": next_cursor}

    def update_tenant(self, principal: Principal, tenant_id: str, name: str | None = None,
                      plan: str | None = None, status: str | None = None,
                      limits: dict[str, Any] | None = None,
                      settings: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                      trial_ends_at: Any = None, status_reason: str | None = None
                      ) -> dict[str, Any]:
        """Change a tenant's record; a new plan or limits apply from the next operation."""
        self._gate.require_system_admin(principal, "manages tenants")
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = str(name)
        if plan is not None:
            values["plan"] = plan_named(plan).name
        if status is not None:
            _check_status(status)
        if limits is not None:
            values["limit_overrides"] = validate_overrides(limits)
        if settings is not None:
            values["settings"] = _check_settings(settings)
        if extra is not None:
            values["extra"] = dict(extra)
        if trial_ends_at is not None:
            values["trial_ends_at"] = parse_timestamp(trial_ends_at)
        values["updated_at"] = self._clock()
        def _work(conn: Connection) -> Any:
            repo = TenantRepository(conn)
            record = repo.get(tenant_id, for_update=True)
            if record is None:
                raise NexusFileNotFoundError(f"no tenant {tenant_id!r}")
            action = "tenant.update"
            if status is not None and status != record.status:
                values["status"] = check_transition(record.status, status)
                values["status_reason"] = status_reason
                action = f"tenant.{status}"
            repo.update(tenant_id, **values)
            changed = sorted(k for k in values if k != "updated_at")
            self._audit.record(conn, principal, action, paths.tenant_root(tenant_id),
                               detail=",".join(changed))

        self._db.run(_work)
        self._states.forget(tenant_id)
        return self.get_tenant(principal, tenant_id)

    # -- lifecycle ---------------------------------------------------------------------

    def suspend_tenant(self, principal: Principal, tenant_id: str,
                       reason: str = "suspended by the operator") -> dict[str, Any]:
        """Refuse every key of the tenant from its next request; keep data, grants, keys."""
        return self.update_tenant(principal, tenant_id, status="suspended",
                                  status_reason=str(reason))

    def reactivate_tenant(self, principal: Principal, tenant_id: str) -> dict[str, Any]:
        """Restore a suspended tenant's access exactly as it was (nothing is re-granted)."""
        return self.update_tenant(principal, tenant_id, status="active")

    def upgrade_tenant(self, principal: Principal, tenant_id: str, plan: str) -> dict[str, Any]:
        """Move the tenant to ``plan``; the new limits apply to its next operation. A
        trial tenant becomes active."""
        current = self.get_tenant(principal, tenant_id)
        status = "active" if current["status"] == "trial" else None
        return self.update_tenant(principal, tenant_id, plan=plan, status=status)

    def cancel_tenant(self, principal: Principal, tenant_id: str,
                      reason: str = "cancelled") -> dict[str, Any]:
        """Refuse the tenant's keys for good; the next step is ``delete_tenant``."""
        return self.update_tenant(principal, tenant_id, status="cancelled",
                                  status_reason=str(reason))

    # -- the live .tenant.json ---------------------------------------------------------

    def read_document(self, tenant_id: str) -> bytes:
        """``.tenant.json`` as the guide reads it (callers have passed the gate)."""
        with self._db.read() as conn:
            record = TenantRepository(conn).get(tenant_id)
            usage = UsageRepository(conn).get(tenant_id)
        if record is None:
            raise NexusFileNotFoundError(f"no tenant {tenant_id!r}")
        return json.dumps(_document(record, usage), indent=2).encode()

    def write_document(self, principal: Principal, tenant_id: str, data: bytes) -> None:
        """Apply a written ``.tenant.json``: name, plan, limits, status, settings and extra
        fields change; ``usage`` is ignored because the server counts it."""
        self._gate.require_system_admin(principal,
                                        f"writes /tenants/{tenant_id}/{TENANT_DOCUMENT}")
        try:
            # NaN and Infinity are not JSON: stored, they would read back differently in
            # process (nan) and over HTTP (null).
            doc = json.loads(data, parse_constant=_not_json)
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgumentError(f"{TENANT_DOCUMENT} must be a JSON object (without "
                                       "NaN or Infinity)") from None
        if not isinstance(doc, dict):
            raise InvalidArgumentError(f"{TENANT_DOCUMENT} must be a JSON object")
        limits = doc.get("limits")
        self.update_tenant(
            principal, tenant_id, name=doc.get("name"), plan=doc.get("plan"),
            status=doc.get("status"),
            status_reason=doc.get("status_reason") or doc.get("suspension_reason"),
            limits=limits if isinstance(limits, dict) else None,
            settings=doc.get("settings") if isinstance(doc.get("settings"), dict) else None,
            trial_ends_at=doc.get("trial_ends_at"),
            extra={k: v for k, v in doc.items() if k not in _DOCUMENT_FIELDS})

    # -- usage, billing, fleet ---------------------------------------------------------

    def get_usage(self, principal: Principal, tenant_id: str) -> dict[str, Any]:
        """Usage, limits, utilisation (%) and warnings at or above 80%."""
        doc = self.get_tenant(principal, tenant_id)
        usage, limits = doc["usage"], doc["limits"]
        utilization: dict[str, float] = {}
        for resource in ("users", "storage_gb", "files"):
            limit = limits.get(f"max_{resource}")
            current = usage.get(resource, 0)
            utilization[resource] = 0.0 if not limit else round(current / limit * 100, 2)
        warnings = [f"{name.replace('_gb', '').capitalize()} at {pct:.0f}% of limit"
                    for name, pct in utilization.items() if pct >= 80]
        return {"tenant_id": tenant_id, "usage": usage, "limits": limits,
                "utilization": utilization, "warnings": warnings}

    def billing_preview(self, principal: Principal, tenant_id: str,
                        month: str | None = None) -> dict[str, Any]:
        """The month's bill so far: plan price plus overage on peak users and storage.

        Rule: overage is charged on the *peak* of the month (the highest user count and
        stored gigabytes any day of the month reached) above the plan's limits, at the
        plan's rates ($10 per user, $0.50 per GB on the default price list).
        """
        doc = self.get_tenant(principal, tenant_id)
        plan = plan_named(doc["plan"])
        with self._db.read() as conn:
            record = TenantRepository(conn).get(tenant_id)
            assert record is not None
            month = _billing_month(month, tenant_id, record.created_at, self._clock())
            peaks = UsageRepository(conn).month(
                tenant_id, month, unfolded=month == time.strftime("%Y-%m", time.gmtime(
                    self._clock())))
            current = UsageRepository(conn).get(tenant_id)
        limits = effective_limits(record.plan, record.limit_overrides)
        peak_users = max(peaks["users_peak"], current.users)
        peak_bytes = max(peaks["storage_peak_bytes"], current.storage_bytes)
        lines = []
        if limits.max_users is not None and peak_users > limits.max_users:
            extra = peak_users - limits.max_users
            lines.append({"item": "extra users", "quantity": extra,
                          "unit_price": plan.overage_per_user,
                          "amount": round(extra * plan.overage_per_user, 2)})
        if limits.max_storage_bytes is not None and peak_bytes > limits.max_storage_bytes:
            extra_gb = (peak_bytes - limits.max_storage_bytes) / GIB
            lines.append({"item": "extra storage (GB)", "quantity": round(extra_gb, 3),
                          "unit_price": plan.overage_per_gb,
                          "amount": round(extra_gb * plan.overage_per_gb, 2)})
        total = round(plan.price_monthly + sum(line["amount"] for line in lines), 2)
        return {"tenant_id": tenant_id, "month": month, "plan": plan.name, "currency": "USD",
                "base": plan.price_monthly, "overage": lines, "total": total,
                "metered": {"peak_users": peak_users, "peak_storage_gb": _storage_gb(peak_bytes),
                            "api_calls": peaks["api_calls"]},
                "rule": "plan price + overage on the month's peak users and storage"}

    def fleet_counts(self) -> dict[str, dict[str, int]]:
        """Tenants by status and by plan (for metrics; two aggregate queries)."""
        with self._db.read() as conn:
            tenants = TenantRepository(conn)
            return {"status": tenants.count_by("status"), "plan": tenants.count_by("plan")}

    def tenant_health_metrics(self, principal: Principal) -> dict[str, Any]:
        """Fleet totals by aggregate queries (never by reading every tenant)."""
        self._gate.require_system_admin(principal, "manages tenants")
        with self._db.read() as conn:
            tenants = TenantRepository(conn)
            by_plan, by_status = tenants.count_by("plan"), tenants.count_by("status")
            totals = UsageRepository(conn).totals()
        count = sum(by_plan.values())
        storage_gb = _storage_gb(totals["storage_bytes"])
        return {"total_tenants": count, "by_plan": by_plan, "by_status": by_status,
                "total_users": totals["users"], "total_storage_gb": storage_gb,
                "avg_users_per_tenant": totals["users"] / count if count else 0,
                "avg_storage_per_tenant": storage_gb / count if count else 0}


def limits_of(record: TenantRecord | None) -> Limits:
    """Effective limits of a stored tenant (free-plan limits if it is unknown)."""
    if record is None:
        return effective_limits("free", {})
    return effective_limits(record.plan, record.limit_overrides)


def _document(record: TenantRecord, usage: Usage) -> dict[str, Any]:
    limits = limits_of(record).as_document()
    limits["features"] = list(plan_named(record.plan).features)
    doc: dict[str, Any] = {
        "tenant_id": record.tenant_id, "name": record.name, "plan": record.plan,
        "status": record.status, "created_at": iso_time(record.created_at),
        "trial_ends_at": iso_time(record.trial_ends_at) if record.trial_ends_at else None,
        "limits": limits,
        "usage": {"users": usage.users, "storage_gb": _storage_gb(usage.storage_bytes),
                  "storage_bytes": usage.storage_bytes, "files": usage.files,
                  "api_calls": usage.api_calls},
        "settings": record.settings,
    }
    if record.status_reason:
        doc["status_reason"] = record.status_reason
    for key, value in record.extra.items():
        doc.setdefault(key, value)
    return doc


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise InvalidArgumentError(f"status must be one of {list(STATUSES)}, not {status!r}")
    return status


_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _month_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m")


def _billing_month(month: object, tenant_id: str, created_at: float, now: float) -> str:
    """``month`` (default: the current one) if a bill can exist for it: a real month,
    not before the tenant existed and not after the current one. A bill for any other
    month would be made up, so it is an error, not an empty bill."""
    current = _month_of(now)
    if month is None:
        return current
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise InvalidArgumentError("month must be YYYY-MM with a month from 01 to 12",
                                   param="month")
    if month > current:
        raise InvalidArgumentError(f"month {month} has not begun (the current month is "
                                   f"{current})", param="month")
    first = _month_of(created_at)
    if month < first:
        raise InvalidArgumentError(f"tenant {tenant_id} did not exist in {month} (created "
                                   f"in {first})", param="month")
    return month



def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _check_settings(settings: Any) -> dict[str, Any]:
    """The settings the server reads must hold values it understands; the rest are the
    application's, stored as they are."""
    if not isinstance(settings, dict):
        raise InvalidArgumentError("settings must be an object")
    mode = settings.get("audit_reads", True)
    if not (isinstance(mode, bool) or mode in AUDIT_READ_MODES):
        raise InvalidArgumentError(
            f"settings.audit_reads must be one of {', '.join(AUDIT_READ_MODES)} (or true "
            f"for batched, false for off), not {mode!r}")
    if not isinstance(settings.get("allow_public_sharing", True), bool):
        raise InvalidArgumentError("settings.allow_public_sharing must be true or false")
    return dict(settings)
