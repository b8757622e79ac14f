"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL tests use one throw-away database per test session (created here, dropped at
the end) and empty its tables after each test. Set ``NEXUS_TEST_POSTGRES_URL`` to point
elsewhere than ``postgresql://postgres@127.0.0.1:5432``; without a reachable server the
PostgreSQL half is skipped locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from sqlalchemy import create_engine, text

import nexus
from nexus.client import (
    AsyncHTTPTransport,
    AsyncLocalTransport,
    AsyncNexusClient,
    HTTPTransport,
    LocalTransport,
    NexusClient,
)
from nexus.service import NexusService, bootstrap
from nexus.settings import Settings
from nexus.store.schema import metadata
from nexus.types import Principal
from tests._s3 import MotoServer, S3Target
from tests.async_clients import BlockingClient, StreamingASGITransport

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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new, empty SQLite deployment's data directory, made once per test process.
    Copying it costs a tenth of creating one (nine migrations), and a few thousand tests
    start from an empty deployment; each copy is a directory of its own."""
    data_dir = tmp_path_factory.mktemp("template") / "data"
    bootstrap(Settings(data_dir=data_dir)).close()
    return data_dir


@pytest.fixture
def service(settings: Settings, request: pytest.FixtureRequest) -> Iterator[NexusService]:
    if settings.database_url is None and not settings.data_dir.exists() \
            and settings.blob_url is None and settings.secret is None:
        shutil.copytree(request.getfixturevalue("sqlite_template"), settings.data_dir)
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


CLIENT_APIS = ["sync", "async"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The client suite (modules marked both_clients) runs every client test through the
    # sync and the async client; a test marked sync_client_only opts out, saying why.
    if "client_api" not in metafunc.fixturenames:
        return
    marks = {mark.name for mark in metafunc.definition.iter_markers()}
    if "both_clients" in marks and "sync_client_only" not in marks:
        metafunc.parametrize("client_api", CLIENT_APIS, indirect=True)


@pytest.fixture
def client_api(request: pytest.FixtureRequest) -> str:
    """Which client the test's clients are: ``sync`` (NexusClient) or ``async``
    (AsyncNexusClient, driven through tests.async_clients.BlockingClient)."""
    return getattr(request, "param", "sync")


@pytest.fixture
def connect_as(service: NexusService, transport: str, client_api: str,  # noqa: ANN201
               request: pytest.FixtureRequest):
    """Factory: a client for a principal or an API key over the selected transport."""
    opened: list[Any] = []
    portal = contextlib.ExitStack()

    def make(*, principal: Principal | None = None, api_key: str | None = None) -> NexusClient:
        if transport == "http" and api_key is None:
            assert principal is not None
            api_key = _key_for(service, principal)
        client: Any
        if client_api == "async":
            if not opened:
                blocking = portal.enter_context(start_blocking_portal())
            else:
                blocking = opened[0]._portal
            client = BlockingClient(_async_client(service, transport, principal, api_key,
                                                  request), blocking)
        elif transport == "local":
            client = NexusClient(LocalTransport(service, principal, api_key=api_key,
                                                owns_service=False))
        else:
            from starlette.testclient import TestClient

            test_client = TestClient(request.getfixturevalue("app"))
            client = NexusClient(HTTPTransport("http://testserver", api_key, client=test_client))
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()
    portal.close()


def _async_client(service: NexusService, transport: str, principal: Principal | None,
                  api_key: str | None, request: pytest.FixtureRequest) -> AsyncNexusClient:
    if transport == "local":
        return AsyncNexusClient(AsyncLocalTransport(
            LocalTransport(service, principal if api_key is None else None, api_key=api_key,
                           owns_service=False)))
    http = httpx.AsyncClient(transport=StreamingASGITransport(request.getfixturevalue("app")),
                             base_url="http://testserver")
    return AsyncNexusClient(AsyncHTTPTransport("http://testserver", api_key, client=http))


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
