"""Prints the BOLA matrix counts and the stateful fuzz's step count at the end of a run
that included them (and the stress tests' counts)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.run_summary import Line, provider
from tests.serving import NexusProcess

from .bola_report import TALLY
from .stateful_model import STEPS

#: Lines the fuzz and stress tests report for the terminal summary.
STRESS = pytest.StashKey[list[str]]()


@pytest.fixture
def stress_report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Add a line to the ``security fuzz and stress`` section of the terminal summary."""
    return request.config.stash.setdefault(STRESS, []).append


@pytest.fixture
def serve(tmp_path: Path, database_url: str | None) -> Iterator[NexusProcess]:
    """A fresh ``nexus serve`` process on the selected backend, logging warnings only
    (thousands of access lines would say nothing here). The stress tests race up to 32
    writers of one tenant against each other, so the per-tenant stream cap (8, which
    tests/server/test_fair_serving.py tests) is raised to let them all in at once."""
    server = NexusProcess(tmp_path / "data", database_url, log=tmp_path / "serve.log",
                          extra_args=("--log-level", "warning", "--streams-per-tenant", "36",
                                      "--streams-total", "36"))
    yield server
    server.stop()


@provider
def _summary(config: pytest.Config) -> list[Line]:
    lines: list[Line] = []
    tally = config.stash.get(TALLY, None)
    if tally is not None and tally.run > 0:
        lines += [Line("security matrix", text) for text in tally.lines()]
    if STEPS.steps > 0:
        outcomes = ", ".join(f"{name} {count:,}" for name, count in
                             sorted(STEPS.outcomes.items(), key=lambda kv: -kv[1]))
        texts = [f"{STEPS.steps:,} steps executed ({STEPS.checks:,} invariant probes, "
                 f"{STEPS.examples:,} examples)",
                 *(f"  {label}: {count:,} steps" for label, count in sorted(STEPS.by_test.items())),
                 f"  calls ended: {outcomes}"]
        lines += [Line("stateful fuzz", text) for text in texts]
    lines += [Line("security fuzz and stress", text) for text in config.stash.get(STRESS, [])]
    return lines
