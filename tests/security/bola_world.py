"""The world the BOLA matrix attacks: two tenants with files, grants, a share, keys — and
one real API key (or a broken credential) per role, every call made over real HTTP.

Everything here is built through the service layer as the local administrator; the
calls under test go through ``starlette.testclient.TestClient(app)`` with
``Authorization: Bearer <key>``, exactly as a remote client would send them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from starlette.testclient import TestClient

from nexus.rpc import encode_value
from nexus.server import create_app
from nexus.service import NexusService, bootstrap
from nexus.settings import Settings
from nexus.store.schema import metadata
from nexus.types import Principal

__all__ = [
    "ACME_ROLES", "ALIAS_BRIEF", "ALIAS_DIR", "AUTHENTICATED", "BETA_DOC", "BETA_SHARED",
    "BRIEF", "DOC", "DOCUMENT", "EXPORT", "GAMMA_ALIAS", "GAMMA_DOC", "OUTBOX", "PRIVATE",
    "ROLES", "ROOT", "SECRET", "SHARED", "UNAUTHENTICATED", "USERS", "Reply", "World",
    "truncate_all",
]

ROOT = Principal.local_admin()

# -- roles -------------------------------------------------------------------------------
#: Principals holding a working key. ``suspended`` belongs to a suspended third tenant.
AUTHENTICATED = ("admin", "tenant_admin", "editor", "viewer", "other_tenant", "suspended")
#: Credentials that must never authenticate.
UNAUTHENTICATED = ("revoked", "expired", "no_key", "garbage", "forged", "wrong_scheme")
ROLES = AUTHENTICATED + UNAUTHENTICATED
ACME_ROLES = ("tenant_admin", "editor", "viewer")

#: role → (tenant, user id) for the principals that have one.
USERS = {
    "tenant_admin": ("acme", "alice"),   # owner of /tenants/acme
    "editor": ("acme", "bob"),           # can_write on /tenants/acme/shared
    "viewer": ("acme", "carol"),         # can_read on /tenants/acme/shared
    "other_tenant": ("beta", "dave"),    # owner of /tenants/beta
    "suspended": ("gamma", "erin"),      # owner of /tenants/gamma, which is suspended
}

# -- acme's and beta's resources -----------------------------------------------------------
SHARED = "/tenants/acme/shared"
PRIVATE = "/tenants/acme/private"
OUTBOX = "/tenants/acme/outbox"          # shared with beta (can_read) by alice
DOC = f"{SHARED}/doc.txt"
SECRET = f"{PRIVATE}/secret.txt"
BRIEF = f"{OUTBOX}/brief.txt"
DOCUMENT = "/tenants/acme/.tenant.json"
EXPORT = "/exports/acme.tar.gz"
BETA_SHARED = "/tenants/beta/shared"
BETA_DOC = f"{BETA_SHARED}/doc.txt"
ALIAS_DIR = "/tenants/beta/shared/from-acme"       # where acme's share shows up in beta
ALIAS_BRIEF = f"{ALIAS_DIR}/outbox/brief.txt"      # … resolving to BRIEF
GAMMA_DOC = "/tenants/gamma/shared/doc.txt"        # shared with acme; gamma is suspended
GAMMA_ALIAS = "/tenants/acme/shared/from-gamma/shared/doc.txt"  # … inside acme's shared


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: status, error code (if any) and the decoded JSON-RPC result."""

    status: int
    code: str | None
    result: Any
    body: str


@contextlib.contextmanager
def scratch_directory(fallback: Path, prefix: str) -> Iterator[Path]:
    """A fresh directory on tmpfs when there is one (SQLite and the blob store fsync every
    commit, the bulk of these tests' time on a disk), else below ``fallback``."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else fallback
    with tempfile.TemporaryDirectory(dir=base, prefix=prefix) as directory:
        yield Path(directory)


class Unlimited:
    """A rate limiter that admits everything: limits are tested in
    tests/tenancy/test_rate_limit.py, and a sweep must not be throttled into 429s."""

    def admit(self, key: str, rate: float, burst: int, cost: float = 1.0, *,
              paid: float = 0.0, calls: int = 0) -> float:
        return 0.0


def truncate_all(url: str) -> None:
    """Empty every table of a PostgreSQL database (between worlds); none yet is fine."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    with engine.begin() as conn:
        present = set(inspect(conn).get_table_names())
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name in present)
        if names:
            conn.execute(text(f"TRUNCATE {names}"))
    engine.dispose()


# Columns that legitimately move on a refused call (counters, bookkeeping, audit).
# `rate_buckets` is the admission itself: every admitted request takes a token and counts a call.
_FINGERPRINT_SKIP = {"audit_events", "audit_heads", "usage_daily", "rate_buckets"}
_VOLATILE = {"last_used_at", "api_calls"}


@dataclass
class World:
    """One deployment with the fixed cast of the matrix; see the module docstring."""

    service: NexusService
    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)
    tuple_ids: dict[str, str] = field(default_factory=dict)
    share_id: str = ""
    _names: itertools.count = field(default_factory=itertools.count)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def build(cls, data_dir: Path, database_url: str | None = None) -> World:
        """A new deployment in ``data_dir``, populated."""
        world = cls._open(data_dir, database_url)
        world._populate()
        return world

    def clone(self, data_dir: Path) -> World:
        """An identical, independent SQLite deployment in ``data_dir``: a copy of this
        (closed) one's files — ids, keys and the deployment secret included."""
        shutil.copytree(self.service.settings.data_dir, data_dir)
        world = self._open(data_dir, None)
        world.keys, world.key_ids = dict(self.keys), dict(self.key_ids)
        world.tuple_ids, world.share_id = dict(self.tuple_ids), self.share_id
        return world

    @classmethod
    def _open(cls, data_dir: Path, database_url: str | None) -> World:
        service = bootstrap(Settings(data_dir=data_dir, database_url=database_url))
        client = TestClient(create_app(service=service), raise_server_exceptions=False)
        client.__enter__()  # one event loop for the world's lifetime, not one per request
        return cls(service, client)

    def close(self, *, remove: bool = False) -> None:
        self.client.__exit__(None, None, None)
        self.service.close()
        if remove:
            shutil.rmtree(self.service.settings.data_dir, ignore_errors=True)

    def _populate(self) -> None:
        svc = self.service
        for tenant in ("acme", "beta", "gamma"):
            # enterprise: the matrix sends hundreds of requests per tenant per second.
            svc.tenants.create_tenant(ROOT, tenant, plan="enterprise")
        for path, data in ((DOC, b"acme shared"), (SECRET, b"acme secret"),
                           (BRIEF, b"acme brief for beta"), (BETA_DOC, b"beta shared"),
                           ("/tenants/beta/private/secret.txt", b"beta secret"),
                           ("/tenants/gamma/shared/doc.txt", b"gamma")):
            svc.files.write(ROOT, path, data)
        grants = {
            "tenant_admin": ("owner", "/tenants/acme"),
            "editor": ("can_write", SHARED),
            "viewer": ("can_read", SHARED),
            "other_tenant": ("owner", "/tenants/beta"),
            "suspended": ("owner", "/tenants/gamma"),
        }
        for role, (relation, path) in grants.items():
            user = USERS[role][1]
            self.tuple_ids[role] = svc.rebac.rebac_create(ROOT, ("user", user), relation,
                                                          ("file", path))
        alice = Principal("alice", "acme")
        self.share_id = svc.shares.create_share(alice, OUTBOX, "beta")["share_id"]
        svc.transfer.export_tenant(ROOT, "acme", path=EXPORT)
        admin = svc.keys.admin_create_key(ROOT, "root", "bola admin", is_admin=True)
        self.keys["admin"], self.key_ids["admin"] = admin["api_key"], admin["key_id"]
        for role, (tenant, user) in USERS.items():
            created = svc.keys.admin_create_key(ROOT, user, f"{role} key", tenant_id=tenant)
            self.keys[role], self.key_ids[role] = created["api_key"], created["key_id"]
        # Broken credentials, each of a powerful principal.
        revoked = svc.keys.admin_create_key(ROOT, "alice", "revoked", tenant_id="acme")
        svc.keys.admin_revoke_key(ROOT, revoked["key_id"])
        self.keys["revoked"] = revoked["api_key"]
        expired = svc.keys.admin_create_key(ROOT, "root2", "expired", is_admin=True,
                                            expires_at=time.time() + 3600)
        svc.keys.admin_update_key(ROOT, expired["key_id"], expires_at=time.time() - 60)
        self.keys["expired"] = expired["api_key"]
        self.keys["garbage"] = "garbage-not-a-key"
        # Well formed, naming the real admin key id, with a wrong secret.
        self.keys["forged"] = f"nx_{self.key_ids['admin']}_{'A' * 43}"
        # gamma shared a folder with acme, then was suspended: the share must stop working.
        svc.shares.create_share(Principal("erin", "gamma"), "/tenants/gamma/shared", "acme")
        svc.tenants.suspend_tenant(ROOT, "gamma", "bola: suspended tenant")

    # -- throw-away resources (unique names, so cells stay independent) ---------------------

    def name(self, prefix: str = "t") -> str:
        return f"{prefix}{next(self._names)}"

    def path(self, directory: str, prefix: str = "new") -> str:
        """A fresh path that does not exist yet."""
        return f"{directory}/{self.name(prefix)}"

    def file(self, directory: str, data: bytes = b"throw-away") -> str:
        """A fresh file."""
        path = self.path(directory, "f")
        self.service.files.write(ROOT, path, data)
        return path

    def tree(self, directory: str) -> str:
        """A fresh directory holding one file."""
        path = self.path(directory, "d")
        self.service.files.write(ROOT, f"{path}/inside.txt", b"inside")
        return path

    def grant(self, path: str, relation: str = "can_read") -> tuple[str, str]:
        """A fresh tuple ``user:<fresh> relation file:path``: ``(public tuple id, user)``."""
        user = self.name("u")
        return self.service.rebac.rebac_create(ROOT, ("user", user), relation,
                                               ("file", path)), user

    def key(self, tenant: str | None) -> str:
        """A fresh key id: of a fresh user of ``tenant``, or a system admin key."""
        if tenant is None:
            return self.service.keys.admin_create_key(ROOT, self.name("root"), "fresh",
                                                      is_admin=True)["key_id"]
        return self.service.keys.admin_create_key(ROOT, self.name("u"), "fresh",
                                                  tenant_id=tenant)["key_id"]

    def share(self, directory: str = SHARED, target: str = "beta") -> str:
        """A fresh share (of a fresh file) into ``target``."""
        return self.service.shares.create_share(ROOT, self.file(directory), target)["share_id"]

    def exists(self, path: str) -> bool:
        return self.service.files.exists(ROOT, path)

    def user_of(self, role: str) -> str:
        return USERS[role][1] if role in USERS else "bola-admin-grantee"

    # -- calls --------------------------------------------------------------------------

    def headers(self, role: str) -> dict[str, str]:
        if role == "no_key":
            return {}
        if role == "wrong_scheme":  # the admin's real key, not as a bearer token
            return {"Authorization": f"Token {self.keys['admin']}"}
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def rpc(self, role: str, method: str, params: dict[str, Any]) -> Reply:
        envelope = {"jsonrpc": "2.0", "id": 1, "method": method,
                    "params": encode_value(params)}
        response = self.client.post(f"/api/nfs/{method}", json=envelope,
                                    headers=self.headers(role))
        return _reply(response)

    def http(self, role: str, verb: str, url: str, *, params: dict[str, str] | None = None,
             content: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        response = self.client.request(verb, url, params=params, content=content,
                                       headers={**self.headers(role), **(headers or {})})
        return _reply(response)

    # -- invariants ---------------------------------------------------------------------

    def fingerprint(self) -> dict[str, list[str]]:
        """Every stored row that a refused call must leave alone (audit and counters of
        requests excepted), table by table in primary-key order."""
        out: dict[str, list[str]] = {}
        with self.service.db.read() as conn:
            for table in metadata.sorted_tables:
                if table.name in _FINGERPRINT_SKIP:
                    continue
                columns = [c for c in table.columns if c.name not in _VOLATILE]
                query = select(*columns).order_by(*table.primary_key.columns)
                out[table.name] = [repr(tuple(row)) for row in conn.execute(query)]
        return out


def _reply(response: Any) -> Reply:
    try:
        body = response.json()
    except ValueError:
        body = None
    code = None
    result = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = (error.get("data") or {}).get("code")
        result = body.get("result", body)
    return Reply(response.status_code, code, result, response.text[:400])
