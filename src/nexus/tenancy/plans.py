"""Plans: limits, features, prices and overage rates — defined here and nowhere else.

Limits are ``max_users``, ``max_storage_gb`` and ``max_files``; ``None`` means unlimited.
A tenant's own overrides win over its plan's. "GB" is a gibibyte (2**30 bytes)
everywhere in Nexus: quotas, usage and billing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nexus.errors import InvalidArgumentError

__all__ = ["DEFAULT_PLAN", "GIB", "LIMIT_KEYS", "PLANS", "Limits", "Plan", "effective_limits"]

GIB = 1024**3
LIMIT_KEYS = ("max_users", "max_storage_gb", "max_files")


@dataclass(frozen=True)
class Plan:
    """One plan of the price list."""

    name: str
    price_monthly: float
    max_users: int | None
    max_storage_gb: float | None
    max_files: int | None
    features: tuple[str, ...] = ()
    overage_per_user: float = 10.0
    overage_per_gb: float = 0.50
    #: Requests per second a tenant may sustain, and the burst above it.
    rate_per_second: float = 50.0
    burst: int = 100
    extra: Mapping[str, Any] = field(default_factory=dict)

    def limits(self) -> dict[str, Any]:
        """The plan's limits in the guide's shape (with its features)."""
        return {"max_users": self.max_users, "max_storage_gb": self.max_storage_gb,
                "max_files": self.max_files, "features": list(self.features)}


PLANS: Mapping[str, Plan] = {
    "free": Plan("free", 0.0, 5, 10, 1_000, ("basic_storage", "basic_sharing"),
                 rate_per_second=20.0, burst=40),
    "pro": Plan("pro", 99.0, 50, 500, 50_000,
                ("advanced_storage", "advanced_sharing", "api_access"),
                rate_per_second=100.0, burst=200),
    "enterprise": Plan("enterprise", 499.0, None, None, None,
                       ("all", "custom_integrations", "dedicated_support"),
                       rate_per_second=500.0, burst=1000),
}
DEFAULT_PLAN = "free"


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits in the units the store counts (``None``: unlimited)."""

    max_users: int | None
    max_storage_bytes: int | None
    max_files: int | None

    def as_document(self) -> dict[str, Any]:
        gb = None if self.max_storage_bytes is None else self.max_storage_bytes / GIB
        if gb is not None and gb == int(gb):
            gb = int(gb)
        return {"max_users": self.max_users, "max_storage_gb": gb, "max_files": self.max_files}


def plan_named(name: str) -> Plan:
    """The plan called ``name``; :class:`InvalidArgumentError` listing the known ones."""
    try:
        return PLANS[name]
    except KeyError:
        raise InvalidArgumentError(f"unknown plan {name!r}; plans: {sorted(PLANS)}") from None


def validate_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only limit keys, each ``None`` or a non-negative number."""
    clean: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in LIMIT_KEYS:
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or value < 0):
            raise InvalidArgumentError(f"{key} must be a non-negative number or None")
        clean[key] = value
    return clean


def effective_limits(plan: str, overrides: Mapping[str, Any]) -> Limits:
    """The plan's limits with the tenant's overrides applied."""
    base = plan_named(plan)
    merged = {"max_users": base.max_users, "max_storage_gb": base.max_storage_gb,
              "max_files": base.max_files, **validate_overrides(overrides)}
    gb = merged["max_storage_gb"]
    return Limits(
        max_users=None if merged["max_users"] is None else int(merged["max_users"]),
        max_storage_bytes=None if gb is None else int(gb * GIB),
        max_files=None if merged["max_files"] is None else int(merged["max_files"]),
    )
