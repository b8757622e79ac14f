"""OpenFGA's matrix tests (``consolidated_1_1_tests.yaml``) through Checker + MemoryTupleReader.

One pytest test per YAML test, plus :func:`test_overall_pass_rate`, which runs them all,
asserts that at least 95% of the check, list-objects and list-users assertions pass, and
publishes the counts for the terminal summary (see ``conftest.py``).
"""

from __future__ import annotations

from collections import Counter

import pytest

from .conftest import CONFORMANCE_TOTALS
from .openfga_matrix import CONFORMANCE_DIR, KINDS, MISSING_DATA, load_tests, run_test

MATRIX = CONFORMANCE_DIR / "consolidated_1_1_tests.yaml"
if not MATRIX.exists():
    pytest.skip(MISSING_DATA, allow_module_level=True)

TESTS = load_tests(MATRIX)

# YAML tests known to fail, with the reason. Empty: every test passes. (xfail_strict is
# on, so an entry here that starts passing fails the run and must be removed.)
XFAIL: dict[str, str] = {}


def _params() -> list[object]:
    return [pytest.param(t, id=t["name"],
                         marks=[pytest.mark.xfail(reason=XFAIL[t["name"]])]
                         if t["name"] in XFAIL else [])
            for t in TESTS]


@pytest.mark.parametrize("test", _params())
def test_yaml_case(test: dict[str, object]) -> None:
    failures = [f"{o.kind}: {o.detail}" for o in run_test(test) if o.status == "failed"]
    assert not failures, "\n".join(failures)


def test_overall_pass_rate(request: pytest.FixtureRequest) -> None:
    counts = {kind: Counter[str]() for kind in KINDS}
    for test in TESTS:
        for outcome in run_test(test):
            counts[outcome.kind][outcome.status] += 1
    totals = {kind: {s: c[s] for s in ("passed", "failed", "skipped")}
              for kind, c in counts.items()}
    request.config.stash[CONFORMANCE_TOTALS] = totals
    summary = "; ".join(f"{k}: {v['passed']} passed, {v['failed']} failed, "
                        f"{v['skipped']} skipped" for k, v in totals.items())
    passed = sum(v["passed"] for v in totals.values())
    judged = sum(v["passed"] + v["failed"] for v in totals.values())
    assert judged > 900, f"too few assertions ran: {summary}"
    for kind, v in totals.items():
        ran = v["passed"] + v["failed"]
        assert v["passed"] >= 0.95 * ran, f"{kind} pass rate below 95%: {summary}"
    assert passed >= 0.95 * judged, summary
