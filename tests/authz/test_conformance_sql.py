"""OpenFGA's matrix tests through Checker + SqlTupleReader, on SQLite and on PostgreSQL.

The runner is the one of ``test_conformance.py`` (:func:`run_test`), given a
:class:`SqlMatrixStore`: each YAML test writes its tuples with :class:`TupleRepository`
into its own tenant of one deployment per database, and every assertion reads through a
fresh :class:`SqlTupleReader` in its own read transaction, with contextual tuples layered
on top (``LayeredTupleReader``).

The matrix runs once per backend (the module-scoped ``sql_run`` fixture, one
``bootstrap`` per backend); :func:`test_yaml_case_sql` then reports each YAML test and
requires exactly the outcomes of the in-memory run, and :func:`test_overall_pass_rate_sql`
asserts that at least 95% pass and publishes the counts for the terminal summary.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from nexus.authz import RelationTuple, TupleReader
from nexus.service import NexusService, bootstrap
from nexus.service.permissions import SqlTupleReader
from nexus.settings import Settings
from nexus.store import Database
from nexus.store.tuples import TupleRepository

from .conftest import CONFORMANCE_BACKEND_TOTALS
from .openfga_matrix import CONFORMANCE_DIR, KINDS, MISSING_DATA, Outcome, load_tests, run_test

MATRIX = CONFORMANCE_DIR / "consolidated_1_1_tests.yaml"
if not MATRIX.exists():
    pytest.skip(MISSING_DATA, allow_module_level=True)

TESTS = load_tests(MATRIX)
BACKENDS = ["sqlite", "postgresql"]
_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def tenant_for(index: int, name: str) -> str:
    """A tenant id per YAML test; the index keeps it unique (two tests share a name)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower())
    tenant = f"t{index:03d}-{slug}"[:63]
    assert _TENANT_ID.fullmatch(tenant), tenant
    return tenant


class SqlMatrixStore:
    """A :class:`~.openfga_matrix.MatrixStore` over one tenant of the metadata store."""

    def __init__(self, db: Database, tenant_id: str) -> None:
        self._db = db
        self._tenant = tenant_id

    def write(self, tuples: Sequence[RelationTuple]) -> None:
        if not tuples:
            return
        now = time.time()
        with self._db.write() as conn:
            repo = TupleRepository(conn)
            for t in tuples:
                repo.write(self._tenant, t, now=now, created_by=None)

    @contextmanager
    def reader(self) -> Iterator[TupleReader]:
        with self._db.read() as conn:
            yield SqlTupleReader(TupleRepository(conn), self._tenant, time.time())


@dataclass(frozen=True)
class MatrixRun:
    """The whole matrix on one backend: outcomes (or the error) per YAML test index."""

    backend: str
    outcomes: dict[int, list[Outcome] | Exception]
    seconds: float


@pytest.fixture(scope="module", params=BACKENDS)
def sql_service(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[NexusService]:
    """One deployment per backend for the whole module (PostgreSQL: the session's
    throw-away database)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    data_dir = tmp_path_factory.mktemp(f"openfga-{request.param}")
    svc = bootstrap(Settings(data_dir=data_dir, database_url=url))
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def sql_run(sql_service: NexusService) -> Iterator[MatrixRun]:
    """Run every YAML test once on this backend; delete its tenants' tuples afterwards
    (the PostgreSQL database is shared with the rest of the session)."""
    db = sql_service.db
    tenants = [tenant_for(i, t["name"]) for i, t in enumerate(TESTS)]
    outcomes: dict[int, list[Outcome] | Exception] = {}
    start = time.perf_counter()
    try:
        for i, test in enumerate(TESTS):
            try:
                outcomes[i] = run_test(test, SqlMatrixStore(db, tenants[i]))
            except Exception as exc:  # noqa: BLE001 - reported by that test's own case
                outcomes[i] = exc
        yield MatrixRun(db.dialect, outcomes, time.perf_counter() - start)
    finally:
        with db.write() as conn:
            repo = TupleRepository(conn)
            for tenant in tenants:
                repo.delete_partition(tenant)
                repo.delete_revision(tenant)


_MEMORY: dict[int, list[Outcome]] = {}


def _memory_outcomes(index: int) -> list[Outcome]:
    if index not in _MEMORY:
        _MEMORY[index] = run_test(TESTS[index])
    return _MEMORY[index]


@pytest.mark.parametrize("index", [pytest.param(i, id=t["name"]) for i, t in enumerate(TESTS)])
def test_yaml_case_sql(sql_run: MatrixRun, index: int) -> None:
    got = sql_run.outcomes[index]
    if isinstance(got, Exception):
        raise got
    failures = [f"{o.kind}: {o.detail}" for o in got if o.status == "failed"]
    assert not failures, "\n".join(failures)
    # Same assertions, same verdicts as MemoryTupleReader (which has no failures either).
    assert got == _memory_outcomes(index)


def test_overall_pass_rate_sql(sql_run: MatrixRun, request: pytest.FixtureRequest) -> None:
    counts = {kind: Counter[str]() for kind in KINDS}
    for index, outcomes in sql_run.outcomes.items():
        if isinstance(outcomes, Exception):  # each assertion it would have judged failed
            outcomes = [o if o.status == "skipped" else Outcome(o.kind, "failed")
                        for o in _memory_outcomes(index)]
        for outcome in outcomes:
            counts[outcome.kind][outcome.status] += 1
    totals: dict[str, dict[str, int]] = {
        kind: {s: c[s] for s in ("passed", "failed", "skipped")} for kind, c in counts.items()}
    by_backend = request.config.stash.setdefault(CONFORMANCE_BACKEND_TOTALS, {})
    by_backend[sql_run.backend] = totals
    summary = (f"[{sql_run.backend}, {sql_run.seconds:.1f} s] " + "; ".join(
        f"{k}: {v['passed']} passed, {v['failed']} failed, {v['skipped']} skipped"
        for k, v in totals.items()))
    passed = sum(v["passed"] for v in totals.values())
    judged = sum(v["passed"] + v["failed"] for v in totals.values())
    assert judged > 900, f"too few assertions ran: {summary}"
    for kind, v in totals.items():
        ran = v["passed"] + v["failed"]
        assert v["passed"] >= 0.95 * ran, f"{kind} pass rate below 95%: {summary}"
    assert passed >= 0.95 * judged, summary
