"""Deployment identity, attacked from the command line: a database is never paired with
another deployment's data directory or blob store, and the operator commands never
create a deployment where there is none (issue 13).

Every command runs as its own ``python -m nexus.cli`` process, as an operator runs it;
where a database is involved the test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

import nexus
from nexus.blobs import LocalBlobStore
from nexus.errors import DeploymentMismatchError
from nexus.service import bootstrap
from nexus.service.maintenance import Maintenance
from nexus.settings import Settings
from nexus.store import Database
from tests.conftest import POSTGRES_ADMIN_URL
from tests.serving import NEXUS, NexusProcess, free_port

OLD = b"the first version of the report\n" * 40
NEW = b"the second version, which replaced it\n" * 40
ID_FILE, MARKER = "deployment.json", ".nexus-deployment"


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``nexus ARGS`` with a clean environment (no NEXUS_* from the caller's shell)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    base["COLUMNS"] = "200"
    return subprocess.run([*NEXUS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})


def db_args(url: str | None) -> list[str]:
    return ["--database-url", url] if url else []


def serve_once(data_dir: Path, url: str | None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``nexus serve`` that is expected to refuse; a server that starts instead hangs
    until the timeout, which fails the test."""
    return run("serve", "--port", str(free_port()), "--data-dir", str(data_dir),
               *db_args(url), env=env, timeout=45)


def populate(data_dir: Path, url: str | None) -> str:
    """A deployment holding one file whose first version is now garbage for gc; returns
    the digest of the current content."""
    client = nexus.connect(config={"data_dir": str(data_dir), "database_url": url})
    try:
        client.write("/tenants/acme/report.txt", OLD)
        return str(client.write("/tenants/acme/report.txt", NEW)["etag"])
    finally:
        client.close()


def blob_file(data_dir: Path, content: bytes, tenant: str = "acme") -> Path:
    digest = hashlib.sha256(content).hexdigest()
    return data_dir / "blobs" / tenant / digest[:2] / digest


def identity(data_dir: Path) -> str:
    return str(json.loads((data_dir / ID_FILE).read_text())["deployment_id"])


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def _pg_engine(url: str):  # noqa: ANN202
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """Factory-less: one brand-new PostgreSQL database (no tables at all), dropped after."""
    name = f"nexus_ident_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql+psycopg://", "postgresql://") + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database(database_url: str | None) -> str | None:
    """``database_url``, migrated (but empty) on PostgreSQL: the conftest empties its
    tables after the test, and a refused start must not be what creates them."""
    if database_url:
        db = Database(database_url)
        db.migrate()
        db.dispose()
    return database_url


@pytest.fixture
def other_database(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The metadata database of a second deployment on the selected backend (``None``:
    SQLite in that deployment's own data directory)."""
    return None if backend == "sqlite" else request.getfixturevalue("fresh_postgres")


def _tables(url: str) -> list[str]:
    engine = _pg_engine(url)
    try:
        with engine.connect() as conn:
            return inspect(conn).get_table_names()
    finally:
        engine.dispose()


# -- the incident: nexus serve --database-url postgresql://… in a SQLite deployment's folder


@pytest.mark.parametrize("upgraded", [True, False], ids=["with-id", "pre-upgrade"])
def test_serve_with_an_empty_postgres_in_a_sqlite_folder_refuses(
        tmp_path: Path, fresh_postgres: str, upgraded: bool) -> None:
    data = tmp_path / "data"
    first = NexusProcess(data)
    first.client().write("/tenants/acme/report.txt", OLD)
    assert first.stop() == 0
    if not upgraded:  # a folder written before deployments had ids
        _forget_identity(data, None)
    before = tree(data)
    admin_key = (data / "admin.key").read_bytes()

    result = serve_once(data, fresh_postgres)

    assert result.returncode == DeploymentMismatchError.exit_code, result.stderr
    assert "deployment_mismatch" in result.stderr and "Traceback" not in result.stderr
    assert "empty" in result.stderr and str(data) in result.stderr
    if upgraded:
        assert identity(data) in result.stderr  # says which id is where
    assert (data / "admin.key").read_bytes() == admin_key  # byte-identical
    assert tree(data) == before  # nothing in the folder changed
    assert _tables(fresh_postgres) == []  # and the empty database stays empty
    assert blob_file(data, OLD).read_bytes() == OLD
    again = NexusProcess(data)  # the SQLite deployment itself is untouched
    try:
        assert again.client().read("/tenants/acme/report.txt") == OLD
    finally:
        again.stop()


def test_serve_never_overwrites_an_existing_admin_key(tmp_path: Path,
                                                      database: str | None) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin.key").write_text("nx_0123456789ab_" + "k" * 43 + "\n")
    before = (data / "admin.key").read_bytes()
    result = serve_once(data, database)  # an admin.key the (empty) database never issued
    assert result.returncode == DeploymentMismatchError.exit_code, result.stderr
    assert "admin.key" in result.stderr
    assert (data / "admin.key").read_bytes() == before


# -- two deployments crossed ----------------------------------------------------------------


def test_crossed_data_dir_database_and_blob_store_refuse(
        tmp_path: Path, database: str | None, other_database: str | None) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    populate(a, database)
    populate(b, other_database)
    id_a, id_b = identity(a), identity(b)
    assert id_a != id_b
    before_a, before_b = tree(a), tree(b)
    if database is None:  # SQLite: the database is in the folder; cross the blobs
        crossings = [(a, None, {"NEXUS_BLOB_URL": str(b / "blobs")})]
    else:
        crossings = [(a, other_database, {}), (b, database, {}),
                     (a, database, {"NEXUS_BLOB_URL": str(b / "blobs")})]
    for data_dir, url, env in crossings:
        for command in (["fsck"], ["gc", "--grace", "0"]):
            result = run(*command, "--data-dir", str(data_dir), *db_args(url), env=env)
            assert result.returncode == DeploymentMismatchError.exit_code, result.stderr
            assert id_a in result.stderr and id_b in result.stderr  # which id is where
        served = serve_once(data_dir, url, env=env)
        assert served.returncode == DeploymentMismatchError.exit_code, served.stderr
        assert id_a in served.stderr and id_b in served.stderr
        assert "Traceback" not in served.stderr
    assert tree(a) == before_a and tree(b) == before_b
    assert blob_file(a, OLD).exists() and blob_file(b, OLD).exists()


def test_gc_against_a_foreign_database_deletes_nothing(
        tmp_path: Path, database: str | None, other_database: str | None) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    populate(a, database)
    populate(b, other_database)
    # b's database judging a's blobs: every one of them looks unreferenced.
    if database is None:
        result = run("gc", "--grace", "0", "--data-dir", str(b),
                     env={"NEXUS_BLOB_URL": str(a / "blobs")})
    else:
        result = run("gc", "--grace", "0", "--data-dir", str(a), *db_args(other_database))
    assert result.returncode == DeploymentMismatchError.exit_code, result.stdout
    assert blob_file(a, OLD).read_bytes() == OLD and blob_file(a, NEW).read_bytes() == NEW

    # The same guard inside Maintenance.gc, below every command line.
    settings_b = Settings(data_dir=b, database_url=other_database)
    service_b = bootstrap(settings_b)
    try:
        crossed = Maintenance(db=service_b.db, blobs=LocalBlobStore(a / "blobs"))
        with pytest.raises(DeploymentMismatchError, match="Nothing was deleted"):
            crossed.gc(grace_seconds=0)
    finally:
        service_b.close()
    assert blob_file(a, OLD).exists() and blob_file(a, NEW).exists()


# -- maintenance commands where there is no deployment -------------------------------------

MAINTENANCE = [["fsck"], ["gc", "--grace", "0"], ["gc", "--dry-run", "--json"],
               ["admin", "create-key", "--user-id", "ops", "--admin"]]


@pytest.mark.parametrize("command", MAINTENANCE, ids=lambda c: " ".join(c[:2]))
def test_maintenance_on_a_missing_data_dir_refuses_and_creates_nothing(
        tmp_path: Path, database: str | None, command: list[str]) -> None:
    real = tmp_path / "nexus-data"
    populate(real, database)
    typo = tmp_path / "nexus-dtaa"
    result = run(*command, "--data-dir", str(typo), *db_args(database))
    assert result.returncode == DeploymentMismatchError.exit_code, result.stdout
    assert "no deployment" in result.stderr and "Traceback" not in result.stderr
    assert "nx_" not in result.stdout  # no key was printed
    assert not typo.exists()


@pytest.mark.parametrize("command", MAINTENANCE, ids=lambda c: " ".join(c[:2]))
def test_maintenance_on_an_empty_database_creates_no_tables_secret_or_key(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest,
        command: list[str]) -> None:
    folder = tmp_path / "somewhere"  # exists, but is no deployment
    folder.mkdir()
    url = request.getfixturevalue("fresh_postgres") if backend == "postgresql" else None
    result = run(*command, "--data-dir", str(folder), *db_args(url))
    assert result.returncode == DeploymentMismatchError.exit_code, result.stdout
    assert "no deployment" in result.stderr and "nx_" not in result.stdout
    assert list(folder.iterdir()) == []  # no nexus.db, no secret, no blobs
    if url:
        assert _tables(url) == []  # no migration ran in the empty database


# -- gc --dry-run and --json ----------------------------------------------------------------


def test_gc_dry_run_deletes_nothing_and_reports_what_it_would(
        tmp_path: Path, database: str | None) -> None:
    data = tmp_path / "data"
    populate(data, database)
    args = ["gc", "--grace", "0", "--data-dir", str(data), *db_args(database)]

    planned = run(*args, "--dry-run", "--json")
    assert planned.returncode == 0, planned.stderr
    report = json.loads(planned.stdout)
    assert report["dry_run"] is True
    assert report["blobs_removed"] == 1 and report["bytes_removed"] == len(OLD)
    assert report["partitions"] == [{"tenant": "acme", "blobs": 1, "bytes": len(OLD)}]
    assert blob_file(data, OLD).read_bytes() == OLD  # still there

    human = run(*args, "--dry-run")
    assert human.returncode == 0, human.stderr
    assert "would remove" in human.stdout and "nothing was deleted" in human.stdout
    assert "1.3 kB" in human.stdout  # sized like the rest of the CLI, not "1280"
    assert "acme" in human.stdout
    assert blob_file(data, OLD).exists()

    done = run(*args, "--json")
    assert done.returncode == 0, done.stderr
    removed = json.loads(done.stdout)
    assert removed["dry_run"] is False and removed["blobs_removed"] == 1
    assert not blob_file(data, OLD).exists()
    assert blob_file(data, NEW).read_bytes() == NEW  # referenced content stays
    again = run(*args, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["blobs_removed"] == 0


def test_gc_json_errors_are_json_too(tmp_path: Path) -> None:
    result = run("gc", "--json", "--data-dir", str(tmp_path / "missing"))
    assert result.returncode == DeploymentMismatchError.exit_code
    assert json.loads(result.stderr)["error"]["code"] == "deployment_mismatch"


# -- pre-upgrade deployments are adopted; normal restarts still work ------------------------


def _forget_identity(data: Path, url: str | None) -> None:
    """Make ``data`` (and its database) look as it did before deployments had ids: no id
    file, no marker, the schema at 0007 (no ``deployment`` table nor later ones)."""
    (data / ID_FILE).unlink()
    (data / "blobs" / MARKER).unlink()
    db = Database(url or f"sqlite:///{data / 'nexus.db'}")
    with db.engine.begin() as conn:
        for table in ("deployment", "cache_events", "rate_buckets"):  # 0008 and later
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    db.dispose()


def test_a_pre_upgrade_deployment_is_adopted_once(tmp_path: Path,
                                                  database: str | None) -> None:
    data = tmp_path / "data"
    first = NexusProcess(data, database)
    first.client().write("/tenants/acme/report.txt", OLD)
    assert first.stop() == 0
    old_id = identity(data)
    _forget_identity(data, database)
    admin_key = (data / "admin.key").read_bytes()

    refused = run("fsck", "--data-dir", str(data), *db_args(database))
    assert refused.returncode == DeploymentMismatchError.exit_code
    assert "nexus serve" in refused.stderr  # how to adopt it
    assert not (data / ID_FILE).exists()  # fsck adopted nothing

    adopted = NexusProcess(data, database, log=tmp_path / "adopted.log")
    try:
        assert adopted.client().read("/tenants/acme/report.txt") == OLD  # same key works
    finally:
        assert adopted.stop() == 0
    new_id = identity(data)
    assert new_id != old_id
    assert (data / "blobs" / MARKER).read_text().strip() == new_id
    assert (data / "admin.key").read_bytes() == admin_key
    assert "shown once" not in adopted.output()  # no new administrator key
    db = Database(database or f"sqlite:///{data / 'nexus.db'}")
    with db.read() as conn:
        row = conn.execute(text("SELECT deployment_id, origin FROM deployment")).one()
    db.dispose()
    assert tuple(row) == (new_id, "adopted")
    checked = run("fsck", "--json", "--data-dir", str(data), *db_args(database))
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"], checked.stdout

    again = NexusProcess(data, database, log=tmp_path / "again.log")  # once only
    assert again.stop() == 0
    assert identity(data) == new_id


def test_restarting_a_deployment_and_operating_it_still_work(
        tmp_path: Path, database: str | None) -> None:
    data = tmp_path / "data"
    first = NexusProcess(data, database)
    first.client().write("/tenants/acme/report.txt", OLD)
    assert first.stop() == 0
    deployment_id, admin_key = identity(data), (data / "admin.key").read_bytes()
    assert (data / "blobs" / MARKER).read_text().strip() == deployment_id

    for command in (["fsck"], ["gc"], ["admin", "create-key", "--user-id", "ops", "--admin"]):
        result = run(*command, "--data-dir", str(data), *db_args(database))
        assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("nx_")

    again = NexusProcess(data, database, log=tmp_path / "again.log")
    try:
        assert again.client(key).read("/tenants/acme/report.txt") == OLD
        assert again.client().read("/tenants/acme/report.txt") == OLD
    finally:
        assert again.stop() == 0
    assert identity(data) == deployment_id
    assert (data / "admin.key").read_bytes() == admin_key
