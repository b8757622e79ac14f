"""Print the OpenFGA conformance tally at the end of every pytest run that computed it.

``CONFORMANCE_TOTALS`` holds the in-memory run (``test_conformance.py``);
``CONFORMANCE_BACKEND_TOTALS`` the runs on the SQL tuple store, one entry per database
(``test_conformance_sql.py``). Both print in one section.
"""

from __future__ import annotations

import pytest

Totals = dict[str, dict[str, int]]  # kind -> {"passed": n, "failed": n, "skipped": n}

CONFORMANCE_TOTALS = pytest.StashKey[Totals]()
CONFORMANCE_BACKEND_TOTALS = pytest.StashKey[dict[str, Totals]]()


def _line(kind: str, counts: dict[str, int]) -> str:
    return (f"{kind}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    totals = terminalreporter.config.stash.get(CONFORMANCE_TOTALS, None)
    by_backend = terminalreporter.config.stash.get(CONFORMANCE_BACKEND_TOTALS, None)
    if not totals and not by_backend:
        return
    terminalreporter.section("OpenFGA conformance (consolidated_1_1_tests.yaml)")
    for kind, counts in (totals or {}).items():
        terminalreporter.write_line(_line(kind, counts))
    for backend, backend_totals in sorted((by_backend or {}).items()):
        for kind, counts in backend_totals.items():
            terminalreporter.write_line(_line(f"{kind} [{backend}]", counts))
