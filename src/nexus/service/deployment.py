"""Deployment identity: which database, data directory and blob store belong together.

A deployment's id (32 hex digits) is recorded in three places, and :func:`open_stores`
(the start of :func:`nexus.service.bootstrap`) reads all three before it changes
anything:

- the database: the one-row ``deployment`` table (:mod:`nexus.store.deployment`);
- the data directory: ``deployment.json`` — the id, the database it was paired with
  (its URL without password) and when;
- the blob store: its ``.nexus-deployment`` marker (:meth:`BlobStore.mark_deployment`).

The rules, in order (``create`` is ``nexus serve`` and the embedded client; maintenance
commands open with ``create=False``):

1. Two places naming different ids: refused, saying which id is where.
2. The database has no id but the data directory or blob store has one: refused (an empty
   or a foreign database would make ``gc`` delete that deployment's content).
3. No id anywhere: with an empty database, a new deployment is created — unless the data
   directory holds a pre-upgrade deployment (``admin.key``, or a ``nexus.db`` with data
   next to a PostgreSQL URL) or the blob store holds blobs, which is refused. A database
   with data is a pre-upgrade deployment and is adopted once: an id is minted and
   recorded everywhere (its ``admin.key``, if any, must be a key of that database).
4. The database has the id: a data directory without an id file joins it (another
   server of the same deployment) unless it holds another deployment as in 3; an empty
   blob store without a marker is marked; one holding unmarked blobs is refused.

Without ``create`` nothing is ever written: a missing data directory, a missing SQLite
file, a database without an id (empty or pre-upgrade) or a missing deployment secret is
refused, and no directory, table, secret or key is made.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from nexus.auth.keys import parse_key
from nexus.auth.secret import SECRET_FILE, load_or_create_secret
from nexus.blobs import BlobStore, blob_store_from_url
from nexus.blobs.base import DEPLOYMENT_MARKER
from nexus.errors import DeploymentMismatchError
from nexus.settings import Settings
from nexus.store import Database, WriteConflict
from nexus.store.deployment import DeploymentRepository

__all__ = ["ADMIN_KEY_FILE", "ID_FILE", "SQLITE_FILE", "Stores", "describe_database",
           "open_stores"]

#: ``<data-dir>/deployment.json``: the deployment this directory belongs to.
ID_FILE = "deployment.json"
#: The bootstrap administrator key ``nexus serve`` saves (and never overwrites).
ADMIN_KEY_FILE = "admin.key"
#: The embedded metadata database of a data directory.
SQLITE_FILE = "nexus.db"
_HELP = ('Point --data-dir, --database-url and NEXUS_BLOB_URL at the parts of one '
         'deployment (docs/operations.md, "Deployment identity").')


@dataclass(frozen=True)
class Stores:
    """The opened parts of one deployment, for :func:`nexus.service.bootstrap`."""

    deployment_id: str
    db: Database
    blobs: BlobStore
    secret: bytes


def describe_database(url: str) -> str:
    """A database URL safe to print and store: no password."""
    return make_url(url).set(password=None).render_as_string(hide_password=False)


def open_stores(settings: Settings, *, create: bool,
                clock: Callable[[], float] = time.time) -> Stores:
    """Open ``settings``' database, blob store and secret as one deployment, creating or
    adopting it only with ``create``. Raises :class:`DeploymentMismatchError` (having
    changed nothing) where the rules of this module refuse."""
    for _attempt in range(3):
        try:
            return _Opening(settings, create, clock).open()
        except WriteConflict:
            continue  # another process recorded an id just now: look again
    raise DeploymentMismatchError("the deployment id kept changing while starting; "
                                  "is another process creating this deployment?")


class _Opening:
    """What one attempt found in the three places, and what it does about it."""

    def __init__(self, settings: Settings, create: bool, clock: Callable[[], float]) -> None:
        self.settings, self.create, self.clock = settings, create, clock
        self.data_dir = settings.data_dir
        self.dir_text = f"data directory {self.data_dir}"
        if settings.database_url:
            self.db = Database(settings.database_url)
            self.db_exists = True
        else:
            self.db = Database(f"sqlite:///{self.data_dir / SQLITE_FILE}")
            self.db_exists = (self.data_dir / SQLITE_FILE).is_file()
        self.db_text = f"database {describe_database(self.db.url)}"
        blob_url = settings.blob_url or str(self.data_dir / "blobs")
        self.blobs = blob_store_from_url(blob_url)
        self.blob_text = f"blob store {blob_url}"

    def open(self) -> Stores:
        try:
            deployment_id = self._reconcile()
            secret = self._secret()
        except BaseException:
            self.db.dispose()
            raise
        return Stores(deployment_id=deployment_id, db=self.db, blobs=self.blobs,
                      secret=secret)

    # -- what is there -------------------------------------------------------------------

    def _reconcile(self) -> str:
        if not self.create and not self.data_dir.is_dir():
            raise DeploymentMismatchError(
                f"no deployment at {self.data_dir}: the directory does not exist (a "
                "mistyped --data-dir?); nothing was created")
        if not self.create and not self.db_exists:
            raise DeploymentMismatchError(
                f"no deployment at {self.data_dir}: it has no {SQLITE_FILE} and no "
                "--database-url was given; nothing was created")
        db_id, db_has_data = self._database_identity()
        dir_id, dir_database = self._dir_identity()
        blob_id = self.blobs.deployment_id()
        found = [(f"the {self.db_text}", db_id, ""),
                 (f"the {self.dir_text} ({ID_FILE})", dir_id,
                  f" (paired with {dir_database})" if dir_database else ""),
                 (f"the {self.blob_text} ({DEPLOYMENT_MARKER})", blob_id, "")]
        if len({i for _, i, _ in found if i}) > 1:
            raise DeploymentMismatchError(
                "refusing to pair parts of different deployments: "
                + "; ".join(f"{where} belongs to deployment {i}{extra}"
                            for where, i, extra in found if i)
                + f" — nothing was changed. {_HELP}")
        if db_id is None:
            return self._without_database_id(db_has_data, found)
        self._join(db_id, dir_id, blob_id)
        return db_id

    def _database_identity(self) -> tuple[str | None, bool]:
        if not self.db_exists:
            return None, False
        with self.db.read() as conn:
            repo = DeploymentRepository(conn)
            record = repo.get()
            return (record.deployment_id, True) if record else (None, repo.holds_data())

    def _dir_identity(self) -> tuple[str | None, str | None]:
        path = self.data_dir / ID_FILE
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
            deployment_id = recorded["deployment_id"]
        except FileNotFoundError:
            return None, None
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise DeploymentMismatchError(
                f"{path} is unreadable ({exc}); it names the deployment this directory "
                f"belongs to — restore it or move the directory aside. {_HELP}") from None
        return str(deployment_id), recorded.get("database")

    def _foreign_content(self, *, queryable: bool) -> list[str]:
        """What in a data directory without an id file shows another deployment than the
        database's: a SQLite deployment's metadata beside a PostgreSQL URL, or an
        ``admin.key`` that is not a key of the database (``queryable``: the database has
        tables to look the key up in)."""
        signs = []
        if self.settings.database_url and (self.data_dir / SQLITE_FILE).is_file():
            sqlite = Database(f"sqlite:///{self.data_dir / SQLITE_FILE}")
            try:
                with sqlite.read() as conn:
                    if DeploymentRepository(conn).holds_data():
                        signs.append(f"{self.data_dir / SQLITE_FILE} holds the metadata of "
                                     "a SQLite deployment")
            finally:
                sqlite.dispose()
        admin_key = self.data_dir / ADMIN_KEY_FILE
        if admin_key.is_file() and not (queryable and self._key_is_ours(admin_key)):
            signs.append(f"{admin_key} is not a key of the {self.db_text}")
        return signs

    def _key_is_ours(self, path: Path) -> bool:
        parsed = parse_key(path.read_text(errors="replace"))
        if parsed is None:
            return False
        with self.db.read() as conn:
            return DeploymentRepository(conn).knows_key(parsed.key_id)

    # -- deciding ------------------------------------------------------------------------

    def _without_database_id(self, db_has_data: bool,
                             found: list[tuple[str, str | None, str]]) -> str:
        elsewhere = [(where, i) for where, i, _ in found[1:] if i]
        state = ("holds a pre-upgrade deployment without an id" if db_has_data
                 else "is empty" if self.db_exists else "does not exist")
        if elsewhere:
            where, other = elsewhere[0]
            raise DeploymentMismatchError(
                f"refusing to open: the {self.db_text} {state}, but {where} belongs to "
                f"deployment {other} — that deployment's database is elsewhere, and this "
                f"one would see its content as garbage. Nothing was changed. {_HELP}")
        if not self.create:
            hint = ("start `nexus serve` once to adopt it" if db_has_data
                    else "a mistyped --data-dir or --database-url?")
            raise DeploymentMismatchError(
                f"no deployment here: the {self.db_text} {state} ({hint}); "
                "nothing was created")
        signs = self._foreign_content(queryable=db_has_data)
        if not db_has_data and self.blobs.holds_blobs():
            signs.append(f"the {self.blob_text} holds blobs")
        if signs:
            action = "adopt it" if db_has_data else "create a new deployment"
            raise DeploymentMismatchError(
                f"refusing to {action}: the {self.db_text} {state}, but "
                + "; ".join(signs) + " — they belong to another deployment. Nothing was "
                f"changed. {_HELP}")
        deployment_id = uuid.uuid4().hex
        origin = "adopted" if db_has_data else "created"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db.migrate()
        self.db.run(lambda conn: DeploymentRepository(conn).record(
            deployment_id, origin=origin, now=self.clock()))
        self._write_id_file(deployment_id)
        self.blobs.mark_deployment(deployment_id)
        return deployment_id

    def _join(self, deployment_id: str, dir_id: str | None, blob_id: str | None) -> None:
        if dir_id is None and (signs := self._foreign_content(queryable=True)):
            raise DeploymentMismatchError(
                f"refusing to open: the {self.db_text} belongs to deployment "
                f"{deployment_id}, but the {self.dir_text} has no {ID_FILE} and "
                + "; ".join(signs) + f" — nothing was changed. {_HELP}")
        if blob_id is None and self.blobs.holds_blobs():
            raise DeploymentMismatchError(
                f"refusing to open: the {self.db_text} belongs to deployment "
                f"{deployment_id}, but the {self.blob_text} holds blobs without a "
                f"{DEPLOYMENT_MARKER} marker — whose are they? Nothing was changed. {_HELP}")
        self.db.migrate()  # an existing deployment's schema: never creates one
        if not self.create:
            return
        if dir_id is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._write_id_file(deployment_id)
        if blob_id is None:
            self.blobs.mark_deployment(deployment_id)

    # -- writing -------------------------------------------------------------------------

    def _write_id_file(self, deployment_id: str) -> None:
        record = {"deployment_id": deployment_id,
                  "database": describe_database(self.db.url),
                  "recorded_at": datetime.fromtimestamp(self.clock(), UTC)
                  .isoformat(timespec="seconds")}
        fd, name = tempfile.mkstemp(dir=self.data_dir, prefix=ID_FILE + ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(name, 0o644)
            os.replace(name, self.data_dir / ID_FILE)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _secret(self) -> bytes:
        if self.create or self.settings.secret:
            return load_or_create_secret(self.data_dir, self.settings.secret)
        try:
            return (self.data_dir / SECRET_FILE).read_bytes().strip()
        except FileNotFoundError:
            raise DeploymentMismatchError(
                f"no deployment secret: {self.data_dir / SECRET_FILE} does not exist and "
                "NEXUS_SECRET is not set (set it as the deployment's servers do); "
                "nothing was created") from None
