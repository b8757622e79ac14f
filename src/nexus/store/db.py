"""Connections to the metadata database: SQLite (WAL) embedded, PostgreSQL in production.

:class:`Database` hands out units of work: ``with db.write() as conn`` runs one
transaction that commits when the block ends normally and rolls back otherwise;
``db.read()`` is the same for reads. On SQLite a write transaction starts with
``BEGIN IMMEDIATE`` so that writers queue on the busy timeout instead of failing with
"database is locked" when a read transaction tries to upgrade; ``synchronous=FULL`` makes
a commit durable before it returns.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from nexus.errors import ConflictError, InvalidPathError, UnavailableError

__all__ = ["SCHEMA_HEAD", "Database", "WriteConflict", "normalize_database_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration's revision; a test checks it against the migrations directory.
#: Comparing with it spares every process start importing Alembic (a sixth of a second)
#: when the schema is already current, which is every start but the first.
SCHEMA_HEAD = "0009"
_WRITE = "nexus_write"


#: SQLSTATEs of a transaction PostgreSQL aborted so another could go on:
#: deadlock_detected, serialization_failure.
_RETRYABLE = frozenset({"40P01", "40001"})
T = TypeVar("T")


class WriteConflict(Exception):
    """Two transactions raced (for a unique key, or into a deadlock); the loser may retry
    from scratch."""


def normalize_database_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and select the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Database:
    """One engine plus the transaction discipline every repository relies on."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalize_database_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.engine = self._create_engine(pool_size=pool_size, echo=echo)
        self._echo = echo
        self._counters_engine: Engine | None = None
        self._counters_lock = threading.Lock()
        #: Threads waiting for a pooled connection right now (read by /metrics).
        self.waiting = 0
        self._waiting_lock = threading.Lock()

    @classmethod
    def for_data_dir(cls, data_dir: Path, **options: Any) -> Database:
        """The embedded default: ``<data_dir>/nexus.db``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'nexus.db'}", **options)

    def _create_engine(self, *, pool_size: int, echo: bool) -> Engine:
        if self.dialect == "sqlite":
            engine = create_engine(self.url, echo=echo, pool_size=pool_size, max_overflow=20,
                                   connect_args={"check_same_thread": False, "timeout": 60})
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        if self.dialect == "postgresql":
            # psycopg prepares repeated statements; PostgreSQL's generic plan for them can
            # pick a poor index before the table is analyzed (seen: a files lookup scanning
            # ix_files_tenant_digest at 1.4 ms instead of the primary key at 0.03 ms).
            return create_engine(
                self.url, echo=echo, pool_size=pool_size, max_overflow=20, pool_pre_ping=True,
                connect_args={"options": "-c plan_cache_mode=force_custom_plan"})
        raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction: commit on normal exit, roll back on any exception."""
        with self._translate(), self._connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def run(self, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
        """The unit of work: ``work(conn)`` in one write transaction, run again from the
        top when the database reports a conflict — a unique-key race, a PostgreSQL
        deadlock victim or serialisation failure, SQLite still busy after its timeout —
        so no write path turns a conflict into a 500. ``work`` must do nothing outside
        the transaction it is given (no blob I/O, no cache updates): it may run twice.
        After ``attempts`` conflicts the caller gets :class:`ConflictError`."""
        for _ in range(attempts):
            try:
                with self.write() as conn:
                    return work(conn)
            except WriteConflict:
                continue
        raise ConflictError("too many concurrent changes to the same data; retry")

    def counters(self, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
        """Like :meth:`run`, but each statement of ``work`` commits on its own
        (autocommit), on connections whose commits survive a crash of this process but
        not of the database server: PostgreSQL's asynchronous commit (a server crash
        loses at most ``3 × wal_writer_delay``, 0.6 s by default), SQLite's
        ``synchronous=NORMAL`` in WAL mode (a power loss loses the last commits). For the
        per-request rate buckets and request counts, where a durable commit per request
        would cost more than the count is worth; never for files or permissions."""
        engine = self._counters_engine or self._create_counters_engine()
        for _ in range(attempts):
            try:
                # Autocommit: one round trip per statement, and ``work``'s statements each
                # stand alone (RateBucketRepository.take is written so).
                with self._translate(), engine.connect() as conn:
                    return work(conn)
            except WriteConflict:
                continue
        raise ConflictError("too many concurrent changes to the same counter; retry")

    def _create_counters_engine(self) -> Engine:
        with self._counters_lock:
            if self._counters_engine is None:
                if self.dialect == "sqlite":
                    engine = create_engine(self.url, echo=self._echo, pool_size=4,
                                           max_overflow=20, isolation_level="AUTOCOMMIT",
                                           connect_args={
                                               "check_same_thread": False, "timeout": 60})
                    event.listen(engine, "connect", _sqlite_on_connect_relaxed)
                else:
                    engine = create_engine(
                        self.url, echo=self._echo, pool_size=4, max_overflow=20,
                        isolation_level="AUTOCOMMIT",
                        pool_pre_ping=True, connect_args={"options": (
                            "-c plan_cache_mode=force_custom_plan "
                            "-c synchronous_commit=off")})
                self._counters_engine = engine
            return self._counters_engine

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one snapshot on SQLite (WAL); READ COMMITTED on PostgreSQL,
        where each statement sees the latest commits (callers needing several statements
        to agree lock rows in a write transaction instead)."""
        with self._translate(), self._connect() as conn, conn.begin():
            yield conn

    def _connect(self) -> Connection:
        with self._waiting_lock:
            self.waiting += 1
        try:
            return self.engine.connect()
        finally:
            with self._waiting_lock:
                self.waiting -= 1

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError as exc:
            raise WriteConflict(str(exc.orig)) from exc
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in _RETRYABLE:
                # PostgreSQL chose this transaction as a deadlock victim (or could not
                # serialise it): nothing was written, the operation may start again.
                raise WriteConflict(str(exc.orig)) from exc
            if getattr(exc.orig, "sqlstate", None) == "54000":  # program_limit_exceeded
                raise InvalidPathError(
                    "path too long for this database's index (PostgreSQL limits an index "
                    "entry to about 2,700 bytes, which holds a path and its parent: keep "
                    "paths under about 1,300 bytes)", rule="path_length") from exc
            if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
                # SQLITE_BUSY after the busy timeout: nothing was written; start again.
                raise WriteConflict(str(exc.orig)) from exc
            if isinstance(exc, OperationalError) and _is_connection_failure(exc):
                raise UnavailableError("the metadata database is unreachable") from exc
            raise

    def migrate(self) -> None:
        """Bring the schema to the newest migration (cheap when it is already there)."""
        if self.schema_revisions() == {SCHEMA_HEAD}:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Two processes starting at once must not both create the tables.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7236452)")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def schema_revisions(self) -> set[str]:
        """The revisions in ``alembic_version`` (empty on a database Nexus never set up)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return set()
            return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}

    def ping(self) -> None:
        """Raise :class:`UnavailableError` unless the database answers."""
        with self.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._counters_engine is not None:
            self._counters_engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred-only).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_connect_relaxed(dbapi_connection: Any, record: Any) -> None:
    _sqlite_on_connect(dbapi_connection, record)
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE)
                         else "BEGIN")


def _is_connection_failure(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return bool(exc.connection_invalidated) or any(
        word in text for word in ("connect", "could not translate host", "server closed",
                                  "terminating connection", "unable to open database"))

