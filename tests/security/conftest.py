"""Prints the BOLA matrix counts at the end of a run that included it."""

from __future__ import annotations

import pytest

from .bola_report import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tally = terminalreporter.config.stash.get(TALLY, None)
    if tally is None or tally.run == 0:
        return
    terminalreporter.section("security matrix")
    for line in tally.lines():
        terminalreporter.write_line(line)
