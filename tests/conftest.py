"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL tests use one throw-away database per test session (created here, dropped at
the end) and empty its tables after each test. Set ``NEXUS_TEST_POSTGRES_URL`` to point
elsewhere than ``postgresql://postgres@127.0.0.1:5432``; without a reachable server the
PostgreSQL half is skipped locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import nexus
from nexus.client import LocalTransport, NexusClient
from nexus.service import NexusService, bootstrap
from nexus.settings import Settings
from nexus.store.schema import metadata
from nexus.types import Principal
from tests._s3 import MotoServer, S3Target

pytest_plugins = ["tests.run_summary", "tests.secrets_in_logs"]

POSTGRES_ADMIN_URL = os.environ.get("NEXUS_TEST_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]

#: Where a run's temporary directories go when the caller did not choose (--basetemp).
_SHM = Path("/dev/shm")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # Before pytest_configure, which fixes the temporary directory factory. tmp_path on
    # tmpfs: SQLite and the blob store fsync every commit, and on a disk those fsyncs are
    # most of the suite's time. What the tests check is that Nexus asks for
    # durability (and survives kill -9, which leaves the page cache intact), not the
    # disk. One directory per run, so concurrent runs never share one; xdist workers
    # receive theirs below the controller's.
    if config.option.basetemp or hasattr(config, "workerinput"):
        return
    if _SHM.is_dir() and os.access(_SHM, os.W_OK):
        config.option.basetemp = str(_SHM / f"nexus-pytest-{os.getpid()}")
        config.stash[_OWN_BASETEMP] = Path(config.option.basetemp)


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


_OWN_BASETEMP = pytest.StashKey[Path]()


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    problem = _postgres_reachable()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    name = f"nexus_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # A commit need not wait for the server's WAL flush: the tests kill Nexus, never
        # PostgreSQL, so what they check holds either way, several times faster.
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names}"))
    engine.dispose()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto's S3 server on loopback for this test session (per xdist worker), with the
    AWS environment pointing at it set for this process and the processes it starts."""
    with MotoServer() as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        yield server


@pytest.fixture(scope="session")
def s3_blob_url(s3_server: MotoServer) -> S3Target:
    """``.url``: a fresh ``s3://bucket/prefix`` each time it is read; ``.env``: the AWS
    variables that reach the server (tests/replicas takes this)."""
    return S3Target(s3_server)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The metadata database of this test run: ``sqlite`` or ``postgresql``."""
    return request.param


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings for a fresh, empty deployment on the selected backend."""
    if backend == "sqlite":
        yield Settings(data_dir=tmp_path / "data")
        return
    url = request.getfixturevalue("postgres_url")
    yield Settings(data_dir=tmp_path / "data", database_url=url)
    _truncate_all(url)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The ``--database-url`` a ``nexus serve`` process gets on the selected backend
    (``None``: SQLite in its data directory); PostgreSQL's tables are emptied after."""
    if backend == "sqlite":
        yield None
        return
    url = request.getfixturevalue("postgres_url")
    yield url.replace("postgresql+psycopg://", "postgresql://")
    _truncate_all(url)


@pytest.fixture
def service(settings: Settings) -> Iterator[NexusService]:
    svc = bootstrap(settings)
    yield svc
    svc.close()


TRANSPORTS = ["local", "http"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """How clients reach the engine: ``local`` (in-process) or ``http`` (the real ASGI app
    through Starlette's TestClient, no socket)."""
    return request.param


@pytest.fixture
def app(service: NexusService):  # noqa: ANN201 - a FastAPI app
    from nexus.server import create_app

    return create_app(service=service)


@pytest.fixture
def connect_as(service: NexusService, transport: str, request: pytest.FixtureRequest):  # noqa: ANN201
    """Factory: a client for a principal or an API key over the selected transport."""
    opened: list[NexusClient] = []

    def make(*, principal: Principal | None = None, api_key: str | None = None) -> NexusClient:
        if transport == "local":
            client = NexusClient(LocalTransport(service, principal, api_key=api_key,
                                                owns_service=False))
        else:
            from starlette.testclient import TestClient

            from nexus.client import HTTPTransport

            if api_key is None:
                assert principal is not None
                api_key = _key_for(service, principal)
            test_client = TestClient(request.getfixturevalue("app"))
            client = NexusClient(HTTPTransport("http://testserver", api_key, client=test_client))
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def _key_for(service: NexusService, principal: Principal) -> str:
    admin = Principal.local_admin()
    if principal.is_admin:
        return str(service.keys.admin_create_key(admin, principal.user_id, "test admin",
                                                 is_admin=True)["api_key"])
    tenant = principal.tenant_id or ""
    service.files.mkdir(admin, f"/tenants/{tenant}")
    return str(service.keys.admin_create_key(admin, principal.user_id, principal.user_id,
                                             tenant_id=tenant)["api_key"])


@pytest.fixture
def admin(connect_as) -> NexusClient:  # noqa: ANN001
    """A client acting as the system administrator."""
    return connect_as(principal=Principal.local_admin())


@pytest.fixture
def tenant_user(connect_as):  # noqa: ANN001, ANN201 - returns a factory
    """Factory: a client acting as ``user_id`` of ``tenant_id`` (non-admin)."""

    def make(tenant_id: str, user_id: str = "user") -> NexusClient:
        return connect_as(principal=Principal(user_id=user_id, tenant_id=tenant_id))

    return make


__all__ = ["nexus"]
