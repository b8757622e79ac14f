"""Print the OpenFGA conformance tally at the end of every pytest run that computed it."""

from __future__ import annotations

import pytest

CONFORMANCE_TOTALS = pytest.StashKey[dict[str, dict[str, int]]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    totals = terminalreporter.config.stash.get(CONFORMANCE_TOTALS, None)
    if not totals:
        return
    terminalreporter.section("OpenFGA conformance (consolidated_1_1_tests.yaml)")
    for kind, counts in totals.items():
        terminalreporter.write_line(f"{kind}: {counts['passed']} passed, {counts['failed']} "
                                    f"failed, {counts['skipped']} skipped")
