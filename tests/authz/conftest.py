"""Print the OpenFGA conformance tally at the end of every pytest run that computed it.

``CONFORMANCE_TOTALS`` holds the in-memory run (``test_conformance.py``);
``CONFORMANCE_BACKEND_TOTALS`` the runs on the SQL tuple store, one entry per database
(``test_conformance_sql.py``). Both print in one section.
"""

from __future__ import annotations

import pytest

from tests.run_summary import Line, provider

Totals = dict[str, dict[str, int]]  # kind -> {"passed": n, "failed": n, "skipped": n}

CONFORMANCE_TOTALS = pytest.StashKey[Totals]()
CONFORMANCE_BACKEND_TOTALS = pytest.StashKey[dict[str, Totals]]()


def _line(kind: str, counts: dict[str, int]) -> str:
    return (f"{kind}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped")


@provider
def _summary(config: pytest.Config) -> list[Line]:
    totals = config.stash.get(CONFORMANCE_TOTALS, None) or {}
    by_backend = config.stash.get(CONFORMANCE_BACKEND_TOTALS, None) or {}
    section = "OpenFGA conformance (consolidated_1_1_tests.yaml)"
    lines = [Line(section, _line(kind, counts)) for kind, counts in totals.items()]
    for backend, backend_totals in sorted(by_backend.items()):
        lines += [Line(section, _line(f"{kind} [{backend}]", counts))
                  for kind, counts in backend_totals.items()]
    return lines
