"""Counts of the BOLA matrix run, kept on the pytest config and printed at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest

__all__ = ["TALLY", "Tally"]


@dataclass
class Tally:
    """What the matrix saw: cells run, expected outcome classes, observed statuses."""

    planned: int = 0
    planned_allowed: int = 0
    run: int = 0
    allowed: int = 0
    refused: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        by_status = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        out = [f"BOLA matrix: {self.planned} cells planned "
               f"({self.planned_allowed} expected allowed, "
               f"{self.planned - self.planned_allowed} expected refused)",
               f"BOLA matrix: {self.run} cells run in {self.seconds:.1f} s: "
               f"{self.allowed} allowed, {self.refused} refused ({by_status})"]
        out += [f"BOLA matrix: UNEXPECTED {line}" for line in self.unexpected]
        return out


TALLY = pytest.StashKey[Tally]()


_SHORT = {"admin": "A", "tenant_admin": "T", "editor": "E", "viewer": "V",
          "other_tenant": "X", "suspended": "S"}
_ORDER = list(_SHORT)


def _roles(roles: object) -> str:
    return "".join(_SHORT[r] for r in _ORDER if r in roles)  # type: ignore[operator]


def expectation_table() -> str:
    """The matrix's expectations as Markdown (pasted into README.md between markers)."""
    from nexus.rpc import METHODS

    from .bola_cases import HOLES, ROUTE_CASES, RPC_CASES

    rows = ["| method / route | variant | allowed | other outcomes |",
            "|---|---|---|---|"]
    groups = [(m, RPC_CASES.get(m, [])) for m in METHODS] + list(ROUTE_CASES.items())
    for group, cases in groups:
        for case in cases:
            if case.fixed is not None:
                allowed, other = "—", f"everyone {case.fixed}"
            else:
                allowed = _roles(case.allow) or "—"
                by_status: dict[int, list[str]] = {}
                for role, status in case.status.items():
                    by_status.setdefault(status, []).append(role)
                other = ", ".join(f"{status}: {_roles(roles)}"
                                  for status, roles in sorted(by_status.items()))
            holes = _roles({r for (g, v, r) in HOLES if g == group and v == case.variant})
            if holes:
                other = f"{other}; **HOLE** (xfail): {holes}".lstrip("; ")
            rows.append(f"| `{group}` | {case.variant} | {allowed} | {other} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m tests.security.bola_report
    print(expectation_table(), end="")
