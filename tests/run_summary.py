"""End-of-run summary sections that hold under pytest-xdist.

Several suites count what they did (the BOLA matrix, the OpenFGA conformance tally, the
stateful fuzz's steps, the run-wide secrets-in-logs scan) and print it at the end. Under
``pytest -n`` those counts live in the worker processes, and the controller, which prints
the summary and decides the exit status, ran no test. So each suite registers a
*provider* here; at the end of a session every process asks its providers for lines, a
worker ships them to the controller with its ``workeroutput``, and whoever prints the
summary prints them all. A line marked ``failed`` fails the run wherever it was made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import pytest

__all__ = ["Line", "provider"]


@dataclass(frozen=True, slots=True)
class Line:
    section: str
    text: str
    failed: bool = False


Provider = Callable[[pytest.Config], list[Line]]

_providers: list[Provider] = []
_KEY = "nexus_summary"
_LINES = pytest.StashKey[list[Line]]()


def provider(fn: Provider) -> Provider:
    """Register ``fn(config) -> [Line, ...]``, asked once at the end of each session."""
    _providers.append(fn)
    return fn


def _is_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("dsession")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    lines = config.stash.setdefault(_LINES, [])
    if not _is_controller(config):  # the controller ran no test: its counts are empty
        lines.extend(line for fn in _providers for line in fn(config))
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_KEY] = [asdict(line) for line in lines]
    elif any(line.failed for line in lines):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    output = getattr(node, "workeroutput", {}) or {}
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    config.stash.setdefault(_LINES, []).extend(Line(**raw) for raw in output.get(_KEY, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    sections: dict[str, list[Line]] = {}
    for line in terminalreporter.config.stash.get(_LINES, []):
        sections.setdefault(line.section, []).append(line)
    for title, lines in sections.items():
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line.text, red=line.failed)
