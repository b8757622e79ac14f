"""Path fuzz: ≥ 2,000 hostile paths (``hostile_names.py``) × every path-taking method, as
a tenant user of acme, over HTTP — then export/import of what was accepted.

Every RPC method of ``nexus.rpc.METHODS`` that takes a path (``path``, ``src``, ``dst``,
a ``file`` object, ``checks``, ``archive``) and the streaming ``GET``/``PUT``/``POST
/api/fs/content`` is called with each entry, by alice, owner of ``/tenants/acme``:

- a path :func:`nexus.paths.normalize` refuses must come back ``400 invalid_path`` with
  the same rule from every method (export/import: ``403``, they are for administrators);
- a path it accepts outside acme must be refused (``403 permission_denied``; ``400
  invalid_argument`` where the method only takes tenant paths) and leave nothing behind;
- a path it accepts inside acme goes through a whole life cycle (upload, download, read,
  stat, exists, sign_url, list, append ×2, copy both ways, rename both ways, grant/check/expand/
  list/revoke, share, delete, mkdir, rmdir, write) and must read back under its normal
  form — written first under its canonical spelling when it has another one (NFD, a
  trailing slash), so a second file would be caught;
- nothing answers 5xx, and every refusal carries a Nexus error code.

Afterwards, as the administrator: beta and the system partition hold exactly what they
held before, every row of ``files``/``rebac_tuples`` sits in the partition its path names,
the blob store has no other namespace, acme holds exactly the expected files with the
expected bytes, and ``fsck`` is clean. Then acme is exported (every archive member
relative, no ``..``, canonical) and imported as a new tenant, which must receive every
file — under its own root only.

The requests go through the real ASGI app (``nexus.server.create_app``) with
``httpx.AsyncClient(transport=httpx.ASGITransport(app))`` — Starlette's ``TestClient``
minus its per-request thread hop, which would triple the run time (≈ 2.5 ms vs 0.8 ms
per request); the export/import phase uses ``TestClient`` itself. The default suite sweeps
a sample on SQLite (every 6th entry, plus the first entry of any template or payload the
stride missed, so every trick is driven) and every 10th entry on PostgreSQL; the whole
corpus on SQLite is ``test_path_fuzz_full.py``, under ``-m slow``.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import io
import json
import os
import tarfile
import time
import typing
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx._transports.asgi as httpx_asgi
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from nexus import paths
from nexus.errors import InvalidPathError
from nexus.rpc import METHODS
from nexus.server import create_app
from nexus.service import NexusService, bootstrap
from nexus.settings import Settings
from nexus.store.schema import metadata
from nexus.types import Principal

from .bola_world import Unlimited, scratch_directory, truncate_all
from .hostile_names import ACCEPT, REJECT, Hostile, build_corpus, expected_normal

ROOT = Principal.local_admin()
ACME = "/tenants/acme"
SRC = f"{ACME}/src.txt"              # an existing file: the other end of rename/copy
SRC_DATA = b"source file"
BETA_FILES = {"/tenants/beta/doc.txt": b"beta doc", "/tenants/beta/private/s.txt": b"beta s"}
BOB = ["user", "bob"]
CORPUS: list[Hostile] = build_corpus()
PG_STRIDE = 10
#: Requests in flight at once during a sweep.
CONCURRENCY = int(os.environ.get("NEXUS_PATH_FUZZ_CONCURRENCY", "4"))
#: The default suite's SQLite sample: every n-th entry (see :func:`sample`).
SQLITE_STRIDE = int(os.environ.get("NEXUS_PATH_FUZZ_STRIDE", "6"))
#: Whether this module's SQLite sweep takes the whole corpus; test_path_fuzz_full.py sets it.
WHOLE_CORPUS = False

#: Names of the parameters that carry a path into a service method.
PATH_PARAMETERS = frozenset({"path", "src", "dst", "object", "checks", "archive"})
#: Cells per entry: ``(cell, RPC method or HTTP verb)``. ``open_read`` streams, so over
#: HTTP it is ``GET /api/fs/content`` (the RPC route refuses streaming methods).
CELLS = [
    ("PUT", "PUT"), ("GET", "GET"), ("read", "read"), ("stat", "stat"), ("exists", "exists"),
    ("sign_url", "sign_url"),
    ("list", "list"), ("POST", "POST"), ("append", "append"), ("copy@src", "copy"),
    ("copy@dst", "copy"), ("rename@src", "rename"), ("rename@dst", "rename"),
    ("rebac_create", "rebac_create"), ("rebac_check", "rebac_check"),
    ("rebac_check_batch", "rebac_check_batch"), ("rebac_expand", "rebac_expand"),
    ("rebac_list_tuples", "rebac_list_tuples"), ("rebac_list_subjects", "rebac_list_subjects"),
    ("rebac_delete", "rebac_delete"), ("create_share", "create_share"),
    ("export_tenant", "export_tenant"), ("import_tenant", "import_tenant"),
    ("delete", "delete"), ("mkdir", "mkdir"), ("rmdir", "rmdir"), ("write", "write"),
]
DRIVEN_METHODS = {method for _, method in CELLS} | {"open_read"}
#: Methods refused to every non-administrator before the path is looked at.
ADMIN_ONLY = {"export_tenant", "import_tenant"}
#: Methods that take only ``/tenants/<id>/…`` paths (400 ``invalid_argument`` elsewhere).
TENANT_PATHS_ONLY = {"rebac_create", "rebac_check", "rebac_check_batch", "rebac_expand",
                     "rebac_list_tuples", "rebac_list_subjects", "rebac_delete",
                     "create_share"}


def _b64(data: bytes) -> dict[str, str]:
    return {"__bytes__": base64.b64encode(data).decode("ascii")}


def _oracle(path: str) -> tuple[str, str]:
    try:
        return "ok", paths.normalize(path)
    except InvalidPathError as exc:
        return "error", exc.rule


def _sendable_in_url(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no URL can carry them
        return False
    return True


# -- the corpus itself -----------------------------------------------------------------


def test_corpus_is_large_distinct_and_meaningful() -> None:
    patterns = [h.pattern for h in CORPUS]
    assert len(CORPUS) >= 2000
    assert len(set(patterns)) == len(patterns)
    assert len({h.id for h in CORPUS}) == len(CORPUS)
    by_expect = Counter(h.expect for h in CORPUS)
    assert by_expect[REJECT] >= 1000 and by_expect[ACCEPT] >= 150
    # the brief's named tricks are all in there
    text = "\n".join(patterns)
    for needle in ["/../", "/./", "%2e%2e", "%2f", "%5c", "%252e", "\u2024", "\u2025",
                   "\ufe52", "\uff0e", "\uff0f", "\u2215", "\u29f8", "\uff3c", "\x00",
                   "\x1f", "\x85", "\u202e", "\u200b", "..\\..\\beta", "a" * 256,
                   "x.", "x ", "/tenants/beta", "e\u0301"]:
        assert needle in text, needle


def test_the_default_sample_drives_every_template_and_every_payload() -> None:
    chosen = sample(list(enumerate(CORPUS)), SQLITE_STRIDE)
    assert len(chosen) < len(CORPUS)
    assert {h.template for _, h in chosen} == {h.template for h in CORPUS}
    assert {h.payload for _, h in chosen} == {h.payload for h in CORPUS}
    assert {h.expect for _, h in chosen} == {h.expect for h in CORPUS}


def test_corpus_expectations_hold_for_normalize() -> None:
    """Each entry's expectation (decided from its payload and template, not by
    ``normalize``) agrees with ``normalize``; accepted forms are canonical and safe."""
    problems = []
    for i, entry in enumerate(CORPUS):
        path = entry.path(i)
        kind, value = _oracle(path)
        if entry.expect == REJECT and kind != "error":
            problems.append(f"{entry.id}: {path!r} was accepted as {value!r}")
        elif entry.expect == ACCEPT and kind == "error":
            problems.append(f"{entry.id}: {path!r} was refused ({value})")
        elif kind == "ok":
            _assert_canonical(value)
            if entry.expect == ACCEPT and (value != expected_normal(entry, i) or not (
                    value.startswith(entry.base(i) + "/") or value == entry.base(i))):
                problems.append(f"{entry.id}: {path!r} normalised to {value!r}")
    assert not problems, "\n".join(problems[:40])


def _assert_canonical(value: str) -> None:
    assert paths.normalize(value) == value and unicodedata.is_normalized("NFC", value)
    for segment in value[1:].split("/"):
        assert segment not in ("", ".", "..")
        folded = unicodedata.normalize("NFKC", segment)
        assert folded not in (".", "..") and "/" not in folded and "\\" not in folded
        assert not any(unicodedata.category(ch).startswith("C") for ch in segment)


def test_every_path_taking_method_is_driven() -> None:
    """A new RPC method with a path parameter fails here until it is added to CELLS."""
    areas = typing.get_type_hints(NexusService)
    taking = set()
    for name, spec in METHODS.items():
        area, attr = spec.target.split(".")
        params = set(inspect.signature(getattr(areas[area], attr)).parameters)
        if params & PATH_PARAMETERS:
            taking.add(name)
    assert taking <= DRIVEN_METHODS, sorted(taking - DRIVEN_METHODS)
    assert {"mkdir", "write", "rename", "copy", "rebac_create", "rebac_check_batch",
            "create_share", "export_tenant", "import_tenant", "open_read"} <= taking


# -- the world -------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    code: str | None
    rule: str | None
    result: Any
    raw: bytes


@dataclass
class Sweep:
    """What one backend's sweep saw."""

    backend: str
    entries: int = 0
    cells: int = 0
    requests: int = 0
    skipped_cells: int = 0
    statuses: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    #: normal form → bytes it must hold at the end (acme's files).
    files: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0

    def fail(self, message: str) -> None:
        self.failures.append(message)


@dataclass
class World:
    backend: str
    whole: bool
    service: NexusService
    app: Any
    alice_key: str
    admin_key: str
    before: dict[str, list[tuple]]
    sweep: Sweep | None = None


def _rows(service: NexusService, table_name: str) -> list[tuple]:
    table = metadata.tables[table_name]
    with service.db.read() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]


def _snapshot(service: NexusService) -> dict[str, list[tuple]]:
    """Rows of beta and of the system partition, which the sweep must not change."""
    out: dict[str, list[tuple]] = {}
    files = metadata.tables["files"]
    tuples = metadata.tables["rebac_tuples"]
    with service.db.read() as conn:
        for tenant in ("beta", "gamma", paths.SYSTEM_PARTITION):
            out[f"files:{tenant}"] = sorted(
                (r.path, r.kind, r.size, r.digest)
                for r in conn.execute(select(files).where(files.c.tenant_id == tenant)))
            out[f"tuples:{tenant}"] = sorted(
                (r.object_type, r.object_id, r.relation, r.subject_type, r.subject_id)
                for r in conn.execute(select(tuples).where(tuples.c.tenant_id == tenant)))
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tmpfs when there is one (every commit fsyncs), else pytest's tmp."""
    with scratch_directory(tmp_path_factory.mktemp("pathfuzz"), "nexus-pathfuzz-") as directory:
        yield directory


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, scratch: Path) -> Iterator[World]:
    yield from open_world(request, scratch, request.param)


def open_world(request: pytest.FixtureRequest, scratch: Path, backend: str) -> Iterator[World]:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    if url is not None:
        truncate_all(url)
    built = build_world(backend, scratch / backend, url, request.module.WHOLE_CORPUS)
    try:
        yield built
    finally:
        built.service.close()
        if url is not None:
            truncate_all(url)


def build_world(backend: str, data_dir: Path, url: str | None, whole: bool = False) -> World:
    """Tenants acme, beta and gamma; alice owns acme, dave beta; a few files in beta."""
    service = bootstrap(Settings(data_dir=data_dir, database_url=url))
    service.tenants._limiter = Unlimited()  # noqa: SLF001 - see Unlimited
    for tenant in ("acme", "beta", "gamma"):
        service.tenants.create_tenant(ROOT, tenant, plan="enterprise")
    service.rebac.rebac_create(ROOT, ("user", "alice"), "owner", ("file", ACME))
    service.rebac.rebac_create(ROOT, ("user", "dave"), "owner", ("file", "/tenants/beta"))
    for path, data in BETA_FILES.items():
        service.files.write(ROOT, path, data)
    service.files.write(ROOT, SRC, SRC_DATA)
    alice = service.keys.admin_create_key(ROOT, "alice", "fuzz", tenant_id="acme")["api_key"]
    admin = service.keys.admin_create_key(ROOT, "root", "fuzz admin", is_admin=True)["api_key"]
    return World(backend, whole, service, create_app(service=service), alice, admin,
                 _snapshot(service))


@pytest.fixture(scope="module")
def swept(world: World) -> World:
    """Runs the sweep once per backend; the tests below judge its results."""
    if world.sweep is None:
        entries = _entries(world)
        started = time.perf_counter()
        with pytest.MonkeyPatch.context() as patch:
            # httpx's ASGITransport tries `import sniffio` on every request (to detect
            # trio); without sniffio installed that failed import is a third of the cost.
            patch.setattr(httpx_asgi, "is_running_trio", lambda: False)
            world.sweep = asyncio.run(_sweep(world, entries))
        world.sweep.seconds = time.perf_counter() - started
    return world


def sample(entries: list[tuple[int, Hostile]], stride: int) -> list[tuple[int, Hostile]]:
    """Every ``stride``-th entry, plus the first of each template and payload it missed.

    A plain stride over a corpus built template by template could skip one trick
    entirely; topping it up keeps every template and every payload in the sweep.
    """
    chosen = dict(entries[::stride])
    templates = {h.template for h in chosen.values()}
    payloads = {h.payload for h in chosen.values()}
    for i, entry in entries:
        if entry.template not in templates or entry.payload not in payloads:
            chosen[i] = entry
            templates.add(entry.template)
            payloads.add(entry.payload)
    return sorted(chosen.items())


def _entries(world: World) -> list[tuple[int, Hostile]]:
    entries = list(enumerate(CORPUS))
    if world.backend == "postgresql":
        return entries[::PG_STRIDE]
    return entries if world.whole else sample(entries, SQLITE_STRIDE)


# -- the sweep -------------------------------------------------------------------------


class Driver:
    """One HTTP client (alice's key) over the ASGI app."""

    def __init__(self, client: httpx.AsyncClient, sweep: Sweep) -> None:
        self._client = client
        self._sweep = sweep

    async def rpc(self, method: str, params: dict[str, Any]) -> Reply:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                          ensure_ascii=True).encode("ascii")
        response = await self._client.post(f"/api/nfs/{method}", content=body,
                                           headers={"content-type": "application/json"})
        return self._reply(response)

    async def content(self, verb: str, path: str, data: bytes = b"") -> Reply:
        response = await self._client.request(verb, "/api/fs/content", params={"path": path},
                                              content=data if verb != "GET" else None)
        return self._reply(response)

    def _reply(self, response: httpx.Response) -> Reply:
        self._sweep.requests += 1
        self._sweep.statuses[response.status_code] += 1
        raw = response.content
        code = rule = None
        result: Any = raw
        if response.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(raw)
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                data = error.get("data") or {}
                code = data.get("code")
                rule = (data.get("details") or {}).get("rule")
            elif isinstance(body, dict):
                result = body.get("result")
        return Reply(response.status_code, code, rule, result, raw)


def _calls(target: str, i: int) -> dict[str, tuple[str, Any]]:
    """Each cell's request with ``target`` as its (hostile) path."""
    obj = ["file", target]
    copy_to, rename_to = f"{ACME}/c/{i}", f"{ACME}/r/{i}"
    return {
        "PUT": ("PUT", b"put"), "GET": ("GET", None), "POST": ("POST", b"post"),
        "read": ("read", {"path": target}), "stat": ("stat", {"path": target}),
        "exists": ("exists", {"path": target}), "list": ("list", {"path": target}),
        "sign_url": ("sign_url", {"path": target}),
        "append": ("append", {"path": target, "data": _b64(b"+")}),
        "copy@src": ("copy", {"src": target, "dst": copy_to}),
        "copy@dst": ("copy", {"src": SRC, "dst": target, "overwrite": True}),
        "rename@src": ("rename", {"src": target, "dst": rename_to}),
        "rename@dst": ("rename", {"src": SRC, "dst": target}),
        "rebac_create": ("rebac_create", {"subject": BOB, "relation": "can_read",
                                          "object": obj}),
        "rebac_check": ("rebac_check", {"subject": BOB, "permission": "can_read",
                                        "object": obj}),
        "rebac_check_batch": ("rebac_check_batch", {"checks": [[BOB, "can_read", obj]]}),
        "rebac_expand": ("rebac_expand", {"permission": "can_read", "object": obj}),
        "rebac_list_tuples": ("rebac_list_tuples", {"object": obj}),
        "rebac_list_subjects": ("rebac_list_subjects", {"object": obj,
                                                        "permission": "can_read"}),
        "rebac_delete": ("rebac_delete", {"subject": BOB, "relation": "can_read",
                                          "object": obj}),
        "create_share": ("create_share", {"path": target, "target_tenant_id": "gamma"}),
        "export_tenant": ("export_tenant", {"tenant_id": "acme", "path": target}),
        "import_tenant": ("import_tenant", {"archive": target, "tenant_id": "acme-x"}),
        "delete": ("delete", {"path": target}), "mkdir": ("mkdir", {"path": target}),
        "rmdir": ("rmdir", {"path": target}),
        "write": ("write", {"path": target, "data": _b64(b"final")}),
    }


async def _call(driver: Driver, target: str, cell: str, spec: tuple[str, Any]) -> Reply:
    method, payload = spec
    if cell in ("PUT", "GET", "POST"):
        return await driver.content(method, target, payload or b"")
    return await driver.rpc(method, payload)


async def _sweep(world: World, entries: list[tuple[int, Hostile]]) -> Sweep:
    sweep = Sweep(world.backend)
    transport = httpx.ASGITransport(app=world.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers={"authorization": f"Bearer {world.alice_key}"},
                                 timeout=None) as client:
        driver = Driver(client, sweep)
        queue = iter(entries)

        async def worker() -> None:
            for i, entry in queue:
                sweep.entries += 1
                await _drive(driver, sweep, i, entry)

        # Entries are independent (each has its own directory), so a few run at once:
        # one's framework work overlaps another's database work in the worker threads.
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return sweep


def _check_common(sweep: Sweep, label: str, reply: Reply) -> bool:
    """No 5xx; every refusal a 4xx with a Nexus error code."""
    if reply.status >= 500:
        sweep.fail(f"{label}: {reply.status} {reply.raw[:300]!r}")
        return False
    if reply.status >= 400 and not reply.code:
        sweep.fail(f"{label}: {reply.status} without a Nexus error code: {reply.raw[:200]!r}")
        return False
    return True


async def _drive(driver: Driver, sweep: Sweep, i: int, entry: Hostile) -> None:
    target = entry.path(i)
    kind, value = _oracle(target)
    calls = _calls(target, i)
    url_ok = _sendable_in_url(target)
    if kind == "ok" and paths.is_within(value, ACME) and value != ACME:
        await _life_cycle(driver, sweep, i, entry, target, value, calls, url_ok)
        return
    outcome = "refused-invalid" if kind == "error" else "refused-escape"
    sweep.outcomes[outcome] += 1
    for cell, method in CELLS:
        label = f"[{entry.id} #{i}] {cell} {target[:120]!r}"
        if cell in ("PUT", "GET", "POST") and not url_ok:
            sweep.skipped_cells += 1
            continue
        sweep.cells += 1
        reply = await _call(driver, target, cell, calls[cell])
        if not _check_common(sweep, label, reply):
            continue
        if method in ADMIN_ONLY:
            expected = {(403, "permission_denied")}
        elif kind == "error":
            if (reply.status, reply.code, reply.rule) != (400, "invalid_path", value):
                sweep.fail(f"{label}: expected 400 invalid_path/{value}, got {reply.status} "
                           f"{reply.code}/{reply.rule}")
            continue
        elif method in TENANT_PATHS_ONLY and paths.tenant_of(value) is None:
            expected = {(400, "invalid_argument"), (403, "permission_denied")}
        else:
            expected = {(403, "permission_denied")}
        if (reply.status, reply.code) not in expected:
            sweep.fail(f"{label}: normal form {value!r}: expected one of {sorted(expected)}, "
                       f"got {reply.status} {reply.code} {reply.raw[:200]!r}")


async def _life_cycle(driver: Driver, sweep: Sweep, i: int, entry: Hostile, target: str,
                      normal: str, calls: dict[str, tuple[str, Any]], url_ok: bool) -> None:
    sweep.outcomes["accepted"] += 1
    copy_to, rename_to = f"{ACME}/c/{i}", f"{ACME}/r/{i}"
    # In the life cycle the file comes back from rename@src's target, not from SRC.
    calls["rename@dst"] = ("rename", {"src": rename_to, "dst": target})
    prefix = f"[{entry.id} #{i}] {target[:120]!r} -> {normal[:120]!r}"
    pre_version = 0
    if target != normal:
        # The canonical spelling first: the hostile spelling must then name that file.
        reply = await driver.rpc("write", {"path": normal, "data": _b64(b"canonical")})
        if reply.status != 200 or reply.result["path"] != normal:
            sweep.fail(f"{prefix}: canonical write: {reply.status} {reply.raw[:200]!r}")
            return
        pre_version = reply.result["version"]

    def ok(cell: str, reply: Reply, check: bool = True, what: str = "") -> None:
        if not _check_common(sweep, f"{prefix} {cell}", reply):
            return
        if reply.status != 200 or not check:
            sweep.fail(f"{prefix} {cell}: {what or 'unexpected'}: {reply.status} "
                       f"{reply.code} {reply.raw[:240]!r}")

    def result_path(reply: Reply) -> Any:
        return reply.result.get("path") if isinstance(reply.result, dict) else None

    for cell, _method in CELLS:
        if cell in ("PUT", "GET", "POST") and not url_ok:
            sweep.skipped_cells += 1
            continue
        sweep.cells += 1
        reply = await _call(driver, target, cell, calls[cell])
        r = reply.result
        if cell == "PUT":
            ok(cell, reply, result_path(reply) == normal and (
                not pre_version or r["version"] == pre_version + 1),
               "not the canonical file")
        elif cell == "GET":
            ok(cell, reply, reply.raw == b"put", "content")
        elif cell == "read":
            expected = b"put" if url_ok else b"canonical"
            ok(cell, reply, isinstance(r, dict) and base64.b64decode(r["__bytes__"]) == expected,
               "content")
        elif cell == "stat":
            ok(cell, reply, result_path(reply) == normal and r["type"] == "file", "stat")
        elif cell == "exists":
            ok(cell, reply, r is True, "exists")
        elif cell == "sign_url":
            ok(cell, reply, isinstance(r, dict) and r["path"] == normal, "signed path")
        elif cell == "list":
            ok(cell, reply, isinstance(r, dict) and [e["path"] for e in r["entries"]] == [normal],
               "listing")
        elif cell in ("POST", "append", "copy@dst", "rename@dst", "mkdir", "write"):
            ok(cell, reply, result_path(reply) == normal, "result path")
        elif cell == "copy@src":
            ok(cell, reply, result_path(reply) == copy_to, "copy target")
        elif cell == "rename@src":
            ok(cell, reply, result_path(reply) == rename_to, "rename target")
        elif cell == "rebac_create":
            ok(cell, reply, isinstance(r, str) and r.startswith("acme:"), "tuple id")
        elif cell in ("rebac_check",):
            ok(cell, reply, r is True, "check")
        elif cell == "rebac_check_batch":
            ok(cell, reply, r == [True], "check batch")
        elif cell == "rebac_expand":
            ok(cell, reply)
        elif cell == "rebac_list_tuples":
            ok(cell, reply, isinstance(r, list) and any(
                t["object_id"] == normal and t["subject_id"] == "bob" for t in r), "tuples")
        elif cell == "rebac_list_subjects":
            ok(cell, reply, isinstance(r, list) and ["user", "bob"] in r, "subjects")
        elif cell == "rebac_delete":
            ok(cell, reply, r is True, "delete tuple")
        elif cell == "create_share":
            ok(cell, reply, isinstance(r, dict) and r["path"] == normal
               and r["source_tenant"] == "acme", "share")
        elif cell in ADMIN_ONLY:
            if _check_common(sweep, f"{prefix} {cell}", reply) and \
                    (reply.status, reply.code) != (403, "permission_denied"):
                sweep.fail(f"{prefix} {cell}: expected 403, got {reply.status} {reply.code}")
        elif cell in ("delete", "rmdir"):
            ok(cell, reply)
    if url_ok:
        sweep.files[copy_to] = b"put" + b"post" + b"+"
    else:
        sweep.files[copy_to] = b"canonical" + b"+"
    sweep.files[normal] = b"final"


# -- the verdicts ----------------------------------------------------------------------


def test_every_hostile_path_through_every_method(swept: World,
                                                 stress_report: Callable[[str], None]) -> None:
    sweep = swept.sweep
    assert sweep is not None
    assert sweep.entries == len(_entries(swept))
    scope = "whole corpus" if swept.whole else "sample"
    stress_report(
        f"path fuzz [{sweep.backend}, {scope}]: {sweep.entries} hostile paths, {sweep.cells} cells "
        f"({sweep.skipped_cells} skipped: no URL can carry a lone surrogate), "
        f"{sweep.requests} requests in {sweep.seconds:.1f}s; outcomes "
        f"{dict(sweep.outcomes)}; statuses {dict(sorted(sweep.statuses.items()))}; "
        f"{len(sweep.failures)} failing cells")
    assert not sweep.failures, f"{len(sweep.failures)} failing cells:\n" + "\n".join(
        sweep.failures[:40])
    assert not [s for s in sweep.statuses if s >= 500]


def test_nothing_outside_acme_changed(swept: World) -> None:
    service = swept.service
    assert _snapshot(service) == swept.before
    for tenant_id, path, *_ in _rows(service, "files"):
        assert tenant_id in ("acme", "beta", "gamma", paths.SYSTEM_PARTITION), (tenant_id, path)
        assert paths.partition_of(path) == tenant_id, (tenant_id, path)
        assert paths.normalize(path) == path
    tuples = metadata.tables["rebac_tuples"]
    with service.db.read() as conn:
        for row in conn.execute(select(tuples)):
            assert row.tenant_id in ("acme", "beta")
            if row.object_type == "file":
                assert paths.tenant_of(row.object_id) == row.tenant_id, row
    if swept.backend == "sqlite":
        blobs = Path(service.settings.data_dir) / "blobs"
        assert {p.name for p in blobs.iterdir()} <= {"acme", "beta", "gamma", ".staging",
                                                   ".nexus-deployment"}
        assert not any((blobs / ".staging").iterdir())


def test_acme_holds_exactly_the_accepted_files_under_their_normal_forms(swept: World) -> None:
    sweep = swept.sweep
    assert sweep is not None
    service = swept.service
    stored = {e.path for e in _all_files(service, ACME)}
    expected = set(sweep.files) | {SRC}
    assert stored == expected, (sorted(stored - expected)[:20], sorted(expected - stored)[:20])
    for path, data in sweep.files.items():
        assert service.files.read(ROOT, path) == data, path
    assert service.files.read(ROOT, SRC) == SRC_DATA
    assert service.maintenance.fsck().ok


def _all_files(service: NexusService, root: str) -> list[Any]:
    out, cursor = [], None
    while True:
        page = service.files.list(ROOT, root, recursive=True, limit=1000, cursor=cursor)
        out.extend(e for e in page.entries if e.type == "file")
        cursor = page.next_cursor
        if cursor is None:
            return out


def test_export_then_import_keeps_every_name_inside_its_tenant(swept: World) -> None:
    service = swept.service
    acme_files = {e.path: service.files.read(ROOT, e.path) for e in _all_files(service, ACME)}
    headers = {"Authorization": f"Bearer {swept.admin_key}"}
    with TestClient(swept.app, raise_server_exceptions=False) as client:
        def rpc(method: str, params: dict[str, Any]) -> Any:
            response = client.post(f"/api/nfs/{method}", headers=headers,
                                   json={"jsonrpc": "2.0", "id": 1, "params": params})
            assert response.status_code == 200, response.text[:500]
            return response.json()["result"]

        exported = rpc("export_tenant", {"tenant_id": "acme",
                                          "path": "/exports/acme-fuzz.tar.gz"})
        assert exported["files"] == len(acme_files)
        response = client.get("/api/fs/content", params={"path": exported["path"]},
                              headers=headers)
        assert response.status_code == 200
        archive = response.content
        members: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                name = member.name
                assert not name.startswith("/") and "\\" not in name, name
                assert ".." not in name.split("/") and "." not in name.split("/"), name
                assert "" not in name.rstrip("/").split("/"), name
                if name.startswith("files/") and member.isfile():
                    relative = name[len("files/"):]
                    assert paths.normalize(f"{ACME}/{relative}") == f"{ACME}/{relative}"
                    handle = tar.extractfile(member)
                    assert handle is not None
                    members[f"{ACME}/{relative}"] = handle.read()
        assert members == acme_files

        imported = rpc("import_tenant", {"archive": exported["path"],
                                          "tenant_id": "acme-copy"})
        assert imported["tenant_id"] == "acme-copy" and imported["files"] == len(acme_files)
    copy_root = "/tenants/acme-copy"
    copied = {e.path: service.files.read(ROOT, e.path) for e in _all_files(service, copy_root)}
    assert copied == {copy_root + p[len(ACME):]: d for p, d in acme_files.items()}
    for tenant_id, path, *_ in _rows(service, "files"):
        assert paths.partition_of(path) == tenant_id, (tenant_id, path)
        if tenant_id == paths.SYSTEM_PARTITION:
            assert path in ("/tenants", "/exports", exported["path"]), path
    tuples = metadata.tables["rebac_tuples"]
    with service.db.read() as conn:
        for row in conn.execute(select(tuples).where(tuples.c.tenant_id == "acme-copy")):
            if row.object_type == "file":
                assert paths.is_within(row.object_id, copy_root), row
    assert {e.path for e in _all_files(service, ACME)} == set(acme_files)
    snapshot = _snapshot(service)
    snapshot.pop(f"files:{paths.SYSTEM_PARTITION}")
    before = dict(swept.before)
    before.pop(f"files:{paths.SYSTEM_PARTITION}")
    assert snapshot == before
    assert service.maintenance.fsck().ok
