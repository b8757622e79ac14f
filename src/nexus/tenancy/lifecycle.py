"""The tenant lifecycle: states and the transitions between them.

``trial``      working normally until ``trial_ends_at``; then suspended ("trial ended")
``active``     working normally (may be put on trial by the operator)
``suspended``  every key of the tenant is refused (``TenantSuspendedError``) and shares
               out of it stop resolving; data, grants and keys stay intact
``cancelled``  refused like ``suspended``; the next step is deletion
"""

from __future__ import annotations

from nexus.errors import ConflictError, InvalidArgumentError

__all__ = ["BLOCKED", "STATUSES", "TRANSITIONS", "check_transition"]

STATUSES = ("trial", "active", "suspended", "cancelled")
#: States in which a tenant's keys are refused.
BLOCKED = frozenset({"suspended", "cancelled"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "trial": frozenset({"active", "suspended", "cancelled"}),
    # An operator may put a tenant (back) on trial: the guide's onboarding registers the
    # workspace first, then writes "status": "trial" into its .tenant.json.
    "active": frozenset({"trial", "suspended", "cancelled"}),
    "suspended": frozenset({"active", "cancelled"}),
    "cancelled": frozenset(),
}


def check_transition(current: str, new: str) -> str:
    """``new`` if a tenant may go from ``current`` to it (or stay); ``ConflictError`` if not."""
    if new not in STATUSES:
        raise InvalidArgumentError(f"status must be one of {list(STATUSES)}, not {new!r}")
    if new != current and new not in TRANSITIONS.get(current, frozenset()):
        article = "an" if current[0] in "aeiou" else "a"
        raise ConflictError(f"{article} {current} tenant cannot become {new}"
                            + ("; delete it instead" if current == "cancelled" else ""))
    return new
