"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL tests use one throw-away database per test session (created here, dropped at
the end) and empty its tables after each test. Set ``NEXUS_TEST_POSTGRES_URL`` to point
elsewhere than ``postgresql://postgres@127.0.0.1:5432``; without a reachable server the
PostgreSQL half is skipped locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import os
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

POSTGRES_ADMIN_URL = os.environ.get("NEXUS_TEST_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


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
def service(settings: Settings) -> Iterator[NexusService]:
    svc = bootstrap(settings)
    yield svc
    svc.close()


@pytest.fixture
def admin(service: NexusService) -> NexusClient:
    """A client acting as the local administrator (the embedded default)."""
    return NexusClient(LocalTransport(service, Principal.local_admin(), owns_service=False))


@pytest.fixture
def tenant_user(service: NexusService):  # noqa: ANN201 - returns a factory
    """Factory: a client acting as ``user_id`` of ``tenant_id`` (non-admin)."""

    def make(tenant_id: str, user_id: str = "user") -> NexusClient:
        principal = Principal(user_id=user_id, tenant_id=tenant_id)
        return NexusClient(LocalTransport(service, principal, owns_service=False))

    return make


__all__ = ["nexus"]
