"""BOLA matrix: every RPC method in ``nexus.rpc.METHODS`` and every HTTP route × every role
× parameter variants aimed at acme's resources (and identifier swaps naming beta), over
real HTTP. Each cell asserts its expected outcome: allowed (2xx), or refused with 401
(``unauthenticated``), 403 (``permission_denied`` / ``tenant_suspended``) or 404 only
where the caller may read the parent. An unexpected 2xx fails the cell; a 5xx fails any
cell; a refused call that changes any stored row fails the cell.

The world (tenants acme, beta, gamma-suspended; files, grants, a share, keys) is rebuilt
for each method, and after any success that changes it for good, so cells stay
independent; allowed mutations run on throw-away resources with unique names.

SQLite by default; ``NEXUS_BOLA_BACKENDS=sqlite,postgresql`` runs PostgreSQL too.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nexus.rpc import METHODS

from .bola_cases import HOLES, ROUTE_CASES, RPC_CASES, Case
from .bola_report import TALLY, Tally, expectation_table
from .bola_world import (
    AUTHENTICATED,
    DOC,
    ROLES,
    SHARED,
    UNAUTHENTICATED,
    Reply,
    World,
    scratch_directory,
    truncate_all,
)

READ_ONLY = frozenset({
    "read", "open_read", "stat", "exists", "list", "rebac_check", "rebac_check_batch",
    "rebac_expand", "rebac_list_tuples", "rebac_list_objects", "rebac_list_subjects",
    "rebac_revision", "rebac_read_model", "admin_list_keys", "admin_get_key", "get_tenant",
    "list_tenants", "get_usage", "billing_preview", "tenant_health_metrics", "audit_query",
    "audit_verify", "audit_export", "list_shares", "GET /api/fs/content", "GET /metrics",
    "GET /health", "GET /openapi.json", "HEAD /openapi.json",
})
CODES = {401: {"unauthenticated"}, 403: {"permission_denied", "tenant_suspended"},
         404: {"not_found"}, 400: {"invalid_argument", "invalid_path"},
         409: {"already_exists"}, 412: {"conflict"}}


def _missing(method: str) -> Case:
    def build(_w: World, _r: str) -> dict[str, Any]:
        pytest.fail(f"RPC method {method!r} has no parameter builder: add its variants "
                    "to tests/security/bola_cases.py")
    return Case(method, "NO BUILDER", build, frozenset())


def _cells() -> Iterator[Any]:
    groups = [(name, RPC_CASES.get(name) or [_missing(name)]) for name in METHODS]
    groups += list(ROUTE_CASES.items())
    for group, cases in groups:
        for case in cases:
            for role in ROLES:
                hole = HOLES.get((group, case.variant, role))
                marks = [pytest.mark.xfail(strict=True, reason=f"HOLE: {hole}")] if hole else []
                yield pytest.param(case, role, id=f"{group}|{case.variant}|{role}",
                                   marks=marks)


CELLS = list(_cells())


def expected_status(case: Case, role: str) -> int:
    if case.fixed is not None:
        return case.fixed
    if role in UNAUTHENTICATED:
        return 401
    if role in case.status:
        return case.status[role]
    if role == "suspended":
        return 403
    return 200 if role in case.allow else 403


def _expected_code(case: Case, role: str, status: int) -> set[str]:
    if status == 403 and role == "suspended" and case.group != "GET /metrics":
        return {"tenant_suspended"}
    if status == 403:
        return {"permission_denied"}
    return CODES.get(status, set())


# -- fixtures --------------------------------------------------------------------------------

BACKENDS = [b for b in os.environ.get("NEXUS_BOLA_BACKENDS", "sqlite").split(",") if b]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Overrides the suite's per-test backend: the matrix runs on SQLite unless asked."""
    return request.param


class Matrix:
    """Hands each cell the world of its method, rebuilt per method and after any success
    that changed it for good."""

    def __init__(self, factory: Callable[[], World], tally: Tally) -> None:
        self._factory = factory
        self._world: World | None = None
        self._group: str | None = None
        self.tally = tally

    def world_for(self, group: str) -> World:
        if self._world is None or self._group != group:
            self.close()
            self._world = self._factory()
            self._group = group
        return self._world

    def spoiled(self) -> None:
        self._group = None

    def close(self) -> None:
        if self._world is not None:
            self._world.close(remove=True)
            self._world = None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the worlds live: tmpfs when there is one (SQLite and the blob store fsync
    every commit, which is the bulk of the matrix's time on a disk), else pytest's tmp."""
    with scratch_directory(tmp_path_factory.mktemp("bola"), "nexus-bola-") as directory:
        yield directory


@pytest.fixture(scope="module")
def matrix(backend: str, scratch: Path, request: pytest.FixtureRequest) -> Iterator[Matrix]:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    names = itertools.count()
    template: list[World] = []

    def factory() -> World:
        data_dir = scratch / f"world-{next(names)}"
        if url is not None:
            truncate_all(url)
            return World.build(data_dir, database_url=url)
        # SQLite: populate once, then hand out copies of its files (milliseconds).
        if not template:
            template.append(World.build(scratch / "template"))
            template[0].close()
        return template[0].clone(data_dir)

    tally = request.config.stash.setdefault(TALLY, Tally())
    tally.planned += len(CELLS)
    tally.planned_allowed += sum(200 <= expected_status(p.values[0], p.values[1]) < 300
                                 for p in CELLS)
    started = time.perf_counter()
    held = Matrix(factory, tally)
    yield held
    held.close()
    if url is not None:
        truncate_all(url)
    tally.seconds += time.perf_counter() - started


# -- the matrix ------------------------------------------------------------------------------

def _send(world: World, case: Case, role: str, params: dict[str, Any]) -> Reply:
    if case.group in METHODS:
        return world.rpc(role, case.group, params)
    verb, _, url = case.group.partition(" ")
    if url == "/api/nfs/{method}":
        return world.rpc(role, params["_method"], {})
    if url != "/api/fs/content":
        return world.http(role, verb, url)
    query = {"path": params["path"]}
    if verb == "GET":
        headers = {"Range": params["_range"]} if "_range" in params else None
        return world.http(role, verb, url, params=query, headers=headers)
    return world.http(role, verb, url, params=query,
                      content=params.get("_body", b"bola streamed"))


def _describe(case: Case, role: str, params: dict[str, Any], reply: Reply) -> str:
    return (f"{role} -> {case.group} [{case.variant}] params={params!r}: "
            f"HTTP {reply.status} {reply.code or ''} {reply.body[:200]}")


@pytest.mark.parametrize("case, role", CELLS)
def test_cell(matrix: Matrix, case: Case, role: str) -> None:
    world = matrix.world_for(case.group)
    params = case.build(world, role)
    expected = expected_status(case, role)
    allowed = 200 <= expected < 300
    guard = (not allowed and case.group not in READ_ONLY) or case.noop
    before = world.fingerprint() if guard else None
    reply = _send(world, case, role, params)
    success = 200 <= reply.status < 300
    tally = matrix.tally
    tally.run += 1
    tally.statuses[reply.status] += 1
    tally.allowed += success
    tally.refused += not success
    if success and not allowed:
        tally.unexpected.append(_describe(case, role, params, reply))
    if success and (case.destructive or (not allowed and case.group not in READ_ONLY)):
        matrix.spoiled()  # the next cell starts from a fresh copy of the world

    assert reply.status < 500, f"server error: {_describe(case, role, params, reply)}"
    if allowed:
        assert success, f"refused, expected allowed: {_describe(case, role, params, reply)}"
        if case.check is not None:
            case.check(world, role, reply.result)
    else:
        assert not success, f"UNEXPECTED SUCCESS: {_describe(case, role, params, reply)}"
        assert reply.status == expected, \
            f"expected {expected}: {_describe(case, role, params, reply)}"
        codes = _expected_code(case, role, expected)
        assert not codes or reply.code in codes, \
            f"expected code {codes}: {_describe(case, role, params, reply)}"
    if case.verify is not None:
        case.verify(world, role, reply.result)
    if before is not None:
        after = world.fingerprint()
        changed = sorted(t for t in before if before[t] != after[t])
        assert not changed, (f"stored state changed ({changed}) by "
                             f"{_describe(case, role, params, reply)}")


# -- the matrix covers everything ------------------------------------------------------------

def test_every_rpc_method_has_parameter_builders() -> None:
    missing = sorted(set(METHODS) - set(RPC_CASES))
    stale = sorted(set(RPC_CASES) - set(METHODS))
    assert not missing, f"RPC methods without BOLA variants: {missing}"
    assert not stale, f"BOLA variants for methods that no longer exist: {stale}"


def test_every_route_is_covered(tmp_path: Path) -> None:
    from nexus.server import create_app
    from nexus.service import bootstrap
    from nexus.settings import Settings

    service = bootstrap(Settings(data_dir=tmp_path / "data"))
    try:
        routes = {f"{verb} {route.path}" for route in create_app(service=service).routes
                  for verb in getattr(route, "methods", None) or ()}
    finally:
        service.close()
    uncovered = sorted(routes - set(ROUTE_CASES))
    assert not uncovered, f"HTTP routes without BOLA cells: {uncovered}"


def test_every_role_is_in_every_variant() -> None:
    for cases in [*RPC_CASES.values(), *ROUTE_CASES.values()]:
        for case in cases:
            assert case.allow <= set(AUTHENTICATED) - {"suspended"}, case
            assert set(case.status) <= set(AUTHENTICATED), case
            assert not case.allow & set(case.status), case


def test_the_envelope_cannot_swap_the_method(matrix: Matrix) -> None:
    """The method is the URL's: a JSON-RPC body naming another method changes nothing."""
    world = matrix.world_for("envelope swap")
    response = world.client.post(
        "/api/nfs/read", headers=world.headers("viewer"),
        json={"jsonrpc": "2.0", "id": 1, "method": "delete", "params": {"path": DOC}})
    assert response.status_code == 200
    assert world.exists(DOC)
    matrix.spoiled()


def test_the_state_guard_sees_changes(matrix: Matrix) -> None:
    """The "refused changes nothing" guard is not vacuous: it sees a stored change, and
    ignores what a refusal itself writes (audit events, request counters)."""
    world = matrix.world_for("guard self-test")
    before = world.fingerprint()
    world.file(SHARED)
    assert world.fingerprint() != before
    before = world.fingerprint()
    assert world.rpc("viewer", "write", {"path": DOC, "data": b"x"}).status == 403
    assert world.fingerprint() == before
    matrix.spoiled()


def test_the_readme_table_is_current() -> None:
    """README.md carries the expectation table; regenerate it with
    ``python -m tests.security.bola_report`` when the matrix changes."""
    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- bola-table:start -->\n", "<!-- bola-table:end -->"
    assert start in readme and end in readme
    table = readme.split(start, 1)[1].split(end, 1)[0]
    assert table == expectation_table(), \
        "tests/security/README.md is stale: paste `python -m tests.security.bola_report`"
