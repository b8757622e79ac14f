"""``fsck`` and ``fsck --repair``: metadata ↔ blobs ↔ usage counters ↔ audit chains.

Each test breaks one thing behind the engine's back (SQL on the tables, files in the blob
directory), then checks what ``fsck`` reports and what ``--repair`` does — and does not —
change. Both backends via the ``service`` fixture; the CLI through Typer's runner.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from nexus.blobs import LocalBlobStore
from nexus.cli.app import app
from nexus.service import NexusService
from nexus.service.maintenance import (
    AUDIT_CHAIN,
    CONTENT_MISMATCH,
    COUNTER_DRIFT,
    MISSING_BLOB,
    MISSING_PARENT,
)
from nexus.settings import Settings
from nexus.store.schema import audit_events, files, tenant_usage
from nexus.types import Principal

ADMIN = Principal.local_admin()
DOC = "/tenants/acme/docs/a.txt"


@pytest.fixture
def populated(service: NexusService) -> NexusService:
    service.files.mkdir(ADMIN, "/tenants/acme")
    service.files.write(ADMIN, DOC, b"alpha" * 100)
    service.files.write(ADMIN, "/tenants/acme/docs/deep/b.bin", b"\x00\x01" * 2000)
    service.files.write(ADMIN, "/tenants/acme/c.txt", b"")
    service.files.write(ADMIN, "/tenants/beta/x.txt", b"beta's file")
    service.files.write(ADMIN, "/notes.txt", b"system partition")
    return service


def _kinds(problems: list) -> set[str]:
    return {p.kind for p in problems}


def _usage(service: NexusService, tenant: str) -> tuple[int, int]:
    with service.db.read() as conn:
        row = conn.execute(select(tenant_usage.c.storage_bytes, tenant_usage.c.files)
                           .where(tenant_usage.c.tenant_id == tenant)).one()
    return int(row[0]), int(row[1])


def _blob_path(settings: Settings, tenant: str, digest: str) -> Path:
    return Path(settings.data_dir) / "blobs" / LocalBlobStore.key(tenant, digest)


def test_a_fresh_deployment_is_clean(populated: NexusService) -> None:
    report = populated.maintenance.fsck(deep=True)
    assert report.ok, report.problems
    assert report.problems == [] and report.repairs == [] and report.remaining == []
    assert report.files_checked == 5
    assert report.blobs_hashed == 5
    assert report.partitions_checked == 3  # _system, acme, beta
    assert report.audit_events_checked > 0
    assert report.unreferenced_blobs == 0


def test_corrupted_counter_is_reported_then_repaired(populated: NexusService) -> None:
    truth = _usage(populated, "acme")
    assert truth == (500 + 4000, 3)
    with populated.db.write() as conn:
        conn.execute(update(tenant_usage).where(tenant_usage.c.tenant_id == "acme")
                     .values(storage_bytes=123, files=42))

    report = populated.maintenance.fsck()
    assert not report.ok
    assert _kinds(report.problems) == {COUNTER_DRIFT}
    assert {p.partition for p in report.problems} == {"acme"}
    messages = " ".join(map(str, report.problems))
    assert "123 bytes" in messages and "42 files" in messages
    assert report.repairs == []
    assert _usage(populated, "acme") == (123, 42)  # a check changes nothing

    repaired = populated.maintenance.fsck(repair=True)
    assert repaired.ok, repaired.remaining
    assert _kinds(repaired.problems) == {COUNTER_DRIFT}
    assert len(repaired.repairs) == 1 and "4500 bytes / 3 files" in repaired.repairs[0]
    assert _usage(populated, "acme") == truth

    after = populated.maintenance.fsck()
    assert after.ok and after.problems == []
    # The repair is an audited change, and the chain it extends still verifies.
    events = populated.audit.audit_query(ADMIN, "acme", action="fsck.repair")["events"]
    assert [e["user_id"] for e in events] == ["nexus-fsck"]
    assert populated.audit.audit_verify(ADMIN, "acme")["ok"]


def test_counter_repair_goes_through_the_ledger_under_the_row_lock(
        populated: NexusService) -> None:
    from nexus.service.quotas import QuotaLedger

    with populated.db.write() as conn:
        conn.execute(update(tenant_usage).where(tenant_usage.c.tenant_id == "beta")
                     .values(storage_bytes=0, files=0))
    ledger = QuotaLedger(db=populated.db)
    with populated.db.write() as conn:
        checked = ledger.recount(conn, "beta")
    assert checked is not None and checked.drift and not checked.repaired
    assert _usage(populated, "beta") == (0, 0)
    with populated.db.write() as conn:
        fixed = ledger.recount(conn, "beta", repair=True)
    assert fixed is not None and fixed.repaired
    assert _usage(populated, "beta") == (len(b"beta's file"), 1)
    with populated.db.write() as conn:
        assert ledger.recount(conn, "nobody") is None


def test_missing_blob_is_reported_and_never_repaired_away(
        populated: NexusService, settings: Settings) -> None:
    digest = populated.files.stat(ADMIN, DOC).etag
    _blob_path(settings, "acme", digest).unlink()

    report = populated.maintenance.fsck()
    assert _kinds(report.problems) == {MISSING_BLOB}
    assert [p.path for p in report.problems] == [DOC]

    repaired = populated.maintenance.fsck(repair=True)
    assert not repaired.ok
    assert repaired.repairs == []
    assert [p.path for p in repaired.remaining] == [DOC]
    # The row, its size and the tenant's counters are all still there.
    assert populated.files.stat(ADMIN, DOC).size == 500
    assert _usage(populated, "acme") == (4500, 3)
    assert not populated.maintenance.fsck().ok


def test_shrunk_blob_and_altered_content(populated: NexusService, settings: Settings) -> None:
    digest = populated.files.stat(ADMIN, "/tenants/acme/docs/deep/b.bin").etag
    blob = _blob_path(settings, "acme", digest)
    blob.write_bytes(b"\xff\xfe" * 2000)  # same size, other bytes: only --deep sees it
    assert populated.maintenance.fsck().ok
    deep = populated.maintenance.fsck(deep=True)
    assert _kinds(deep.problems) == {CONTENT_MISMATCH}
    assert not populated.maintenance.fsck(repair=True, deep=True).ok

    blob.write_bytes(b"short")
    report = populated.maintenance.fsck()
    assert [str(p) for p in report.problems] == [
        "/tenants/acme/docs/deep/b.bin: recorded size 4000 but blob holds 5 bytes"]


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "delete_last"])
def test_tampered_audit_log_is_reported_not_repaired(populated: NexusService,
                                                     tamper: str) -> None:
    e = audit_events.c
    with populated.db.write() as conn:
        last = conn.execute(select(e.seq).where(e.tenant_id == "acme")
                            .order_by(e.seq.desc())).first()[0]
        assert last >= 3
        if tamper == "edit":
            conn.execute(update(audit_events).where(e.tenant_id == "acme", e.seq == 2)
                         .values(target="/tenants/acme/innocent.txt"))
        else:
            seq = 2 if tamper == "delete_middle" else last
            conn.execute(delete(audit_events).where(e.tenant_id == "acme", e.seq == seq))

    report = populated.maintenance.fsck()
    assert _kinds(report.problems) == {AUDIT_CHAIN}
    assert {p.partition for p in report.problems} == {"acme"}
    expected = {"edit": "event 2: content was altered", "delete_middle": "events 2..2 are missing",
                "delete_last": "events were removed"}[tamper]
    assert any(expected in str(p) for p in report.problems), report.problems
    # The same walk as audit_verify: fsck reuses it.
    assert not populated.audit.audit_verify(ADMIN, "acme")["ok"]

    repaired = populated.maintenance.fsck(repair=True)
    assert not repaired.ok and repaired.repairs == []
    assert _kinds(repaired.remaining) == {AUDIT_CHAIN}


def test_missing_parent_directories_are_recreated(populated: NexusService) -> None:
    with populated.db.write() as conn:
        conn.execute(delete(files).where(files.c.tenant_id == "acme",
                                         files.c.path.in_(["/tenants/acme/docs",
                                                           "/tenants/acme/docs/deep"])))
    report = populated.maintenance.fsck()
    assert _kinds(report.problems) == {MISSING_PARENT}
    assert {p.path for p in report.problems} == {DOC, "/tenants/acme/docs/deep/b.bin"}

    repaired = populated.maintenance.fsck(repair=True)
    assert repaired.ok, repaired.remaining
    assert sorted(repaired.repairs) == [
        "/tenants/acme/docs/deep: recreated missing parent directory",
        "/tenants/acme/docs: recreated missing parent directory"]
    assert populated.files.stat(ADMIN, "/tenants/acme/docs").type == "directory"
    listed = {e.path for e in populated.files.list(ADMIN, "/tenants/acme", recursive=True)
              .entries}
    assert {DOC, "/tenants/acme/docs/deep/b.bin"} <= listed
    assert populated.maintenance.fsck().ok


def test_unreferenced_blobs_are_counted_not_problems(populated: NexusService) -> None:
    from nexus.blobs import blob_store_from_url

    blobs = blob_store_from_url(str(Path(populated.settings.data_dir) / "blobs"))
    blobs.put("acme", b"left behind by a write that never committed")
    report = populated.maintenance.fsck(repair=True)
    assert report.ok and report.problems == []
    assert report.unreferenced_blobs == 1  # fsck leaves content to gc
    assert populated.maintenance.gc(grace_seconds=0).blobs_removed == 1


def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    argv = ["fsck", "--data-dir", str(settings.data_dir), *args]
    if settings.database_url:
        argv += ["--database-url", settings.database_url]
    result = CliRunner().invoke(app, argv)
    return result.exit_code, result.stdout


def test_cli_reports_repairs_and_exit_codes(populated: NexusService,
                                            settings: Settings) -> None:
    code, out = _cli(settings)
    assert code == 0 and "clean" in out
    code, out = _cli(settings, "--json", "--deep")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] and data["files_checked"] == 5 and data["blobs_hashed"] == 5

    with populated.db.write() as conn:
        conn.execute(update(tenant_usage).where(tenant_usage.c.tenant_id == "acme")
                     .values(files=99))
    digest = populated.files.stat(ADMIN, "/tenants/beta/x.txt").etag
    _blob_path(settings, "beta", digest).unlink()

    code, out = _cli(settings, "--json")
    assert code == 1
    data = json.loads(out)
    assert not data["ok"]
    assert sorted(p["kind"] for p in data["problems"]) == [COUNTER_DRIFT, MISSING_BLOB]

    code, out = _cli(settings, "--repair")
    assert code == 1  # the missing blob remains
    assert "99 files" in out and "3 files" in out and "x.txt" in out

    code, out = _cli(settings, "--json")
    data = json.loads(out)
    assert code == 1 and [p["kind"] for p in data["remaining"]] == [MISSING_BLOB]

    # Put the blob back: clean again, exit 0.
    _blob_path(settings, "beta", digest).write_bytes(b"beta's file")
    assert hashlib.sha256(b"beta's file").hexdigest() == digest
    code, out = _cli(settings, "--repair", "--deep")
    assert code == 0 and "clean" in out


def test_concurrent_writes_and_recursive_rmdir_leave_fsck_clean(service: NexusService) -> None:
    """Writers create files in a directory another thread keeps removing recursively.

    Regression (PostgreSQL, READ COMMITTED): rmdir summed the subtree in one statement and
    deleted it in the next, so a file committed in between was deleted without a refund
    (the counters kept its bytes); and a writer that had seen the directory could commit
    its file after the rmdir, leaving a row whose parent directory was gone.
    """

    from nexus.errors import NexusError

    service.files.mkdir(ADMIN, "/tenants/acme")
    stop = threading.Event()
    done = {"write": 0, "rmdir": 0}

    def writer(i: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                service.files.write(ADMIN, f"/tenants/acme/d/sub{n % 2}/w{i}-{n}.txt",
                                    b"x" * (100 + i))
                done["write"] += 1
            except NexusError:
                pass
            n += 1

    def remover() -> None:
        while not stop.is_set():
            try:
                service.files.rmdir(ADMIN, "/tenants/acme/d", recursive=True)
                done["rmdir"] += 1
            except NexusError:
                time.sleep(0.001)

    _run_for(3, stop, [threading.Thread(target=writer, args=(i,)) for i in range(6)]
             + [threading.Thread(target=remover)])
    assert done["write"] > 20 and done["rmdir"] > 0, done
    report = service.maintenance.fsck()
    assert report.ok, [str(p) for p in report.problems]


def test_directory_renames_racing_writes_and_rmdir_stay_consistent(
        service: NexusService) -> None:
    """Writers fill ``r/a/sub*`` while a mover renames ``r/a`` into ``r/b`` (writers then
    create it anew) and a remover removes ``r`` recursively.

    Regressions (PostgreSQL): a directory rename moved the subtree in one statement that
    missed a file committed under a subdirectory meanwhile (left under the old path, its
    parent gone); a rename into a directory while rmdir removed an ancestor could deadlock,
    and the deadlock reached the caller as a server error instead of being retried. Every
    call must end in success or a Nexus error, and fsck must be clean.
    """

    from nexus.errors import NexusError

    service.files.mkdir(ADMIN, "/tenants/acme")
    stop = threading.Event()
    done = {"write": 0, "rename": 0, "rmdir": 0}
    unexpected: list[BaseException] = []

    def loop(name: str, call: Callable[[int], object]) -> None:
        n = 0
        while not stop.is_set():
            try:
                call(n)
                done[name] += 1
            except NexusError:
                time.sleep(0.001)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                unexpected.append(exc)
                return
            n += 1

    root = "/tenants/acme/r"

    def write(i: int) -> Callable[[int], object]:
        return lambda n: service.files.write(
            ADMIN, f"{root}/a/sub{n % 3}/w{i}-{n}.txt", b"y" * (10 + i))

    def move(n: int) -> object:
        # the directory writers fill, into a sibling directory of the same parent
        service.files.mkdir(ADMIN, f"{root}/b")
        return service.files.rename(ADMIN, f"{root}/a", f"{root}/b/x{n}")

    def remove(n: int) -> object:
        time.sleep(0.02)
        return service.files.rmdir(ADMIN, root, recursive=True)

    _run_for(3, stop, [threading.Thread(target=loop, args=("write", write(i)))
                       for i in range(4)]
             + [threading.Thread(target=loop, args=("rename", move)),
                threading.Thread(target=loop, args=("rmdir", remove))])
    assert not unexpected, [repr(e) for e in unexpected]
    assert done["write"] > 20 and done["rename"] > 0 and done["rmdir"] > 0, done
    report = service.maintenance.fsck()
    assert report.ok, [str(p) for p in report.problems]


def test_a_tenant_users_write_never_brings_its_deleted_tenant_back(
        service: NexusService) -> None:
    """A tenant user's write that passed the permission check and then waited for a
    concurrent deletion of the tenant used to recreate the tenant root — registering a
    tenant with no keys and no owner. It must fail instead; the tenant stays deleted."""

    from nexus.errors import NexusError

    unexpected: list[BaseException] = []
    for round_ in range(8):
        tenant = f"gone{round_}"
        service.files.mkdir(ADMIN, f"/tenants/{tenant}")
        service.rebac.rebac_create(ADMIN, ("user", "u"), "owner", ("file", f"/tenants/{tenant}"))
        user = Principal(user_id="u", tenant_id=tenant)
        stop = threading.Event()

        def writer(i: int, tenant: str = tenant, user: Principal = user,
                   stop: threading.Event = stop) -> None:
            n = 0
            while not stop.is_set():
                try:
                    service.files.write(user, f"/tenants/{tenant}/w{i}/f{n}.txt", b"z")
                except NexusError:
                    pass
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    unexpected.append(exc)
                    return
                n += 1

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        service.files.rmdir(ADMIN, f"/tenants/{tenant}", recursive=True)
        time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
    assert not unexpected, [repr(e) for e in unexpected]
    tenants = [t["tenant_id"] for t in service.tenants.list_tenants(ADMIN)["tenants"]]
    assert not [t for t in tenants if t.startswith("gone")], tenants
    report = service.maintenance.fsck()
    assert report.ok, [str(p) for p in report.problems]


def _run_for(seconds: float, stop: threading.Event, threads: list[threading.Thread]) -> None:
    """Start ``threads``, let them race for ``seconds``, then stop and join them."""
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
