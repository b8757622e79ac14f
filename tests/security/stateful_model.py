"""The reference model behind ``test_stateful.py``: tenants, users, grants, shares,
suspensions and files, and what every principal must get from read/stat/exists/list.

Pure Python, no I/O. Each ``expect_*`` answers ``("ok", value)`` or ``("err", class)``
exactly as the server is documented (and was read) to answer, for the small set of
operations the fuzz drives:

- a principal is the system administrator (``tenant is None``) or ``user`` of ``tenant``;
- admission first: every key of a suspended tenant gets :class:`TenantSuspendedError`;
- ``can(principal, action, path)`` is the default model (``authz/default.fga``): a local
  user needs a grant on the path or an ancestor (owner ⊇ editor ⊇ can_write ⊇ viewer ⊇
  can_read); a user of another tenant needs an active share tuple into its tenant on the
  path or an ancestor, and nothing resolves out of a suspended tenant;
- share aliases ``/tenants/<t>/shared/from-<s>/<name>[/rest]`` resolve for read, stat,
  exists and write (never for delete or list), the alias directory itself is virtual;
  both only for members of ``<t>`` (or, for an alias of a file, of ``<s>``) —
  ``service/share_alias.py`` and ``files.py``;
- deleting a file drops every tuple on it and, if there were any, ends its share records.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from nexus.errors import (
    InvalidArgumentError,
    NexusFileNotFoundError,
    NexusIsADirectoryError,
    NexusPermissionError,
    TenantSuspendedError,
)

__all__ = [
    "ALIAS_NAMES", "DIRS", "FILES", "GRANT_RELATIONS", "LEVELS", "SHARE_TARGETS", "STEPS",
    "Actor", "Model", "Share", "StepCounter", "err", "ok",
]

# -- the universe of one tenant (relative to /tenants/<id>) --------------------------------
#: Directories every tenant has (create_tenant makes users/shared/uploads/exports; the
#: fuzz adds shared/docs). They are never removed.
DIRS = ("", "/users", "/shared", "/shared/docs", "/uploads", "/exports")
#: The files the fuzz writes and deletes (every parent exists).
FILES = ("/shared/a.txt", "/shared/docs/b.txt", "/uploads/c.txt", "/d.txt")
#: Objects of grants and shares: a directory or a file (basenames are unique per tenant,
#: and differ from every tenant id, so at most one path answers to an alias name).
SHARE_TARGETS = ("", "/shared", "/shared/docs", "/uploads", *FILES)
#: Paths relative to ``/tenants/<t>/shared/from-<s>`` that the invariant probes (``{s}``
#: stands for the source tenant's id, the alias name of a share of its root).
ALIAS_NAMES = ("", "/{s}", "/shared", "/docs", "/uploads", "/a.txt", "/b.txt", "/c.txt",
               "/d.txt", "/shared/a.txt", "/shared/docs/b.txt", "/docs/b.txt",
               "/uploads/c.txt", "/{s}/d.txt", "/{s}/shared/docs")

GRANT_RELATIONS = ("viewer", "editor", "owner")
#: action → the relations (direct or inherited) that carry it.
LEVELS = {
    "can_read": frozenset({"owner", "editor", "can_write", "viewer", "can_read"}),
    "can_write": frozenset({"owner", "editor", "can_write"}),
    "owner": frozenset({"owner"}),
}
BLOCKED = frozenset({"suspended", "cancelled"})


class StepCounter:
    """Rules and checks executed by every state machine of this process."""

    def __init__(self) -> None:
        self.steps = 0
        self.checks = 0
        self.examples = 0
        self.by_test: dict[str, int] = {}
        #: "ok" or the error class name → how often a call (rule or probe) ended so.
        self.outcomes: dict[str, int] = {}

    def outcome(self, name: str) -> None:
        self.outcomes[name] = self.outcomes.get(name, 0) + 1


#: Read by ``tests/security/conftest.py`` for the terminal summary.
STEPS = StepCounter()

Outcome = tuple[str, Any]


def ok(value: Any = None) -> Outcome:
    return ("ok", value)


def err(cls: type[Exception]) -> Outcome:
    return ("err", cls)


def root(tenant: str) -> str:
    return f"/tenants/{tenant}"


def tenant_of(path: str) -> str | None:
    parts = path.split("/")
    return parts[2] if len(parts) >= 3 and parts[1] == "tenants" and parts[2] else None


def parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def basename(path: str) -> str:
    return path.rsplit("/", 1)[1]


def ancestors_or_self(path: str) -> list[str]:
    out = [path]
    while path.count("/") > 1:
        path = parent(path)
        out.append(path)
    return out


def within(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


@dataclass(frozen=True, slots=True)
class Actor:
    """A principal: the system administrator (``tenant is None``) or a tenant's user."""

    tenant: str | None
    user: str

    @property
    def is_admin(self) -> bool:
        return self.tenant is None

    @property
    def name(self) -> str:
        return "admin" if self.is_admin else f"{self.user}@{self.tenant}"


@dataclass
class Share:
    """A share record and the identity of the tuple it stands for."""

    source: str
    target: str
    path: str
    permission: str
    tuple_gen: int
    seq: int
    share_id: str = ""
    revoked: bool = False


@dataclass
class Model:
    """What the deployment holds, as far as the fuzz changed it."""

    status: dict[str, str] = field(default_factory=dict)          # tenant → status
    dirs: set[str] = field(default_factory=set)
    files: dict[str, bytes] = field(default_factory=dict)
    grants: set[tuple[str, str, str]] = field(default_factory=set)  # (user, relation, path)
    #: share tuples in the source tenant's store: (path, permission, target) → generation
    share_tuples: dict[tuple[str, str, str], int] = field(default_factory=dict)
    shares: list[Share] = field(default_factory=list)
    _gen: itertools.count = field(default_factory=itertools.count)

    # -- structure -------------------------------------------------------------------------

    def add_tenant(self, tenant: str) -> None:
        self.status[tenant] = "active"
        self.dirs.update(root(tenant) + d for d in DIRS)

    def exists(self, path: str) -> bool:
        return path in self.dirs or path in self.files

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def children(self, path: str) -> list[str]:
        return sorted(p for p in itertools.chain(self.dirs, self.files)
                      if p != path and parent(p) == path)

    # -- the decisions ---------------------------------------------------------------------

    def admit(self, actor: Actor) -> Outcome | None:
        """``TenantService.admit``: keys of a blocked tenant are refused."""
        if actor.is_admin:
            return None
        if self.status.get(actor.tenant or "") in BLOCKED:
            return err(TenantSuspendedError)
        return None

    def can(self, actor: Actor, action: str, path: str) -> bool:
        """``AccessGate.allowed`` under the default model."""
        if actor.is_admin:
            return True
        tenant = tenant_of(path)
        if tenant is None or tenant not in self.status:
            return False
        relations = LEVELS[action]
        chain = ancestors_or_self(path)
        if actor.tenant == tenant:
            return any((actor.user, rel, a) in self.grants for a in chain for rel in relations)
        if self.status[tenant] in BLOCKED:
            return False
        return any((a, rel, actor.tenant) in self.share_tuples for a in chain
                   for rel in relations)

    def is_tenant_admin(self, actor: Actor, tenant: str) -> bool:
        return actor.is_admin or (actor.tenant == tenant and self.can(actor, "owner",
                                                                     root(tenant)))

    # -- aliases -----------------------------------------------------------------------------

    @staticmethod
    def alias_parts(path: str) -> tuple[str, str, list[str]] | None:
        """``share_alias._alias_parts``: (target, source, rest) of an alias path."""
        parts = path.split("/")
        if len(parts) < 5 or parts[1] != "tenants" or parts[3] != "shared" \
                or not parts[4].startswith("from-"):
            return None
        source = parts[4][len("from-"):]
        if not source or source == parts[2]:
            return None
        return parts[2], source, parts[5:]

    def active_shares(self, target: str, source: str | None = None) -> list[Share]:
        """Active records into ``target`` (oldest first), whatever the source's state."""
        return [s for s in sorted(self.shares, key=lambda s: s.seq)
                if s.target == target and not s.revoked
                and (source is None or s.source == source)]

    def sees_aliases(self, actor: Actor | None, path: str, directory: bool = False) -> bool:
        """``FileService._may_see_aliases``: aliases resolve only for the system
        administrator and members of the alias's or (for an alias of a file) the
        source's tenant; for anyone else an alias-shaped path is an ordinary path."""
        parsed = self.alias_parts(path)
        return parsed is not None and (
            actor is None or actor.is_admin
            or actor.tenant in (parsed[:1] if directory else parsed[:2]))

    def resolve(self, path: str, actor: Actor | None = None) -> str:
        """``ShareAliases.resolve`` as ``actor`` sees it (None: someone who sees aliases)."""
        parsed = self.alias_parts(path)
        if parsed is None or not parsed[2] or self.exists(path) \
                or not self.sees_aliases(actor, path):
            return path
        target, source, rest = parsed
        for share in self.active_shares(target, source):
            if basename(share.path) == rest[0]:
                return "/".join([share.path, *rest[1:]])
        return path

    def alias_directory(self, path: str, actor: Actor | None = None
                        ) -> tuple[str, list[Share]] | None:
        parsed = self.alias_parts(path)
        if parsed is None or parsed[2] or not self.sees_aliases(actor, path, directory=True):
            return None
        return parsed[0], self.active_shares(parsed[0], parsed[1])

    # -- reads -------------------------------------------------------------------------------

    def expect_stat(self, actor: Actor, path: str) -> Outcome:
        """``ok((path, type, size))`` — ``path`` is the source path behind an alias."""
        refused = self.admit(actor)
        if refused:
            return refused
        aliases = self.alias_directory(path, actor)
        if aliases is not None and not self.exists(path) and aliases[1]:
            return ok((path, "directory", 0))
        resolved = self.resolve(path, actor)
        if not self.can(actor, "can_read", resolved):
            return err(NexusPermissionError)
        if resolved in self.dirs:
            return ok((resolved, "directory", 0))
        if resolved in self.files:
            return ok((resolved, "file", len(self.files[resolved])))
        return err(NexusFileNotFoundError)

    def expect_exists(self, actor: Actor, path: str) -> Outcome:
        outcome = self.expect_stat(actor, path)
        if outcome[0] == "ok":
            return ok(True)
        if outcome[1] is NexusFileNotFoundError:
            return ok(False)
        return outcome

    def expect_read(self, actor: Actor, path: str) -> Outcome:
        refused = self.admit(actor)
        if refused:
            return refused
        resolved = self.resolve(path, actor)
        if not self.can(actor, "can_read", resolved):
            return err(NexusPermissionError)
        if resolved in self.dirs:
            return err(NexusIsADirectoryError)
        if resolved not in self.files:
            return err(NexusFileNotFoundError)
        return ok(self.files[resolved])

    def expect_list(self, actor: Actor, path: str) -> Outcome:
        """``ok(sorted paths)``: aliases are not followed below the alias directory."""
        refused = self.admit(actor)
        if refused:
            return refused
        aliases = self.alias_directory(path, actor)
        if aliases is not None and not self.exists(path):
            _, entries = aliases
            if not entries:
                return err(NexusFileNotFoundError)
            alias_dir = path
            return ok(sorted(f"{alias_dir}/{basename(s.path)}" for s in entries
                             if self.can(actor, "can_read", s.path) and self.exists(s.path)))
        if not self.can(actor, "can_read", path):
            return err(NexusPermissionError)
        if path in self.files:
            return ok([path])
        if path not in self.dirs:
            return err(NexusFileNotFoundError)
        return ok([c for c in self.children(path) if self.can(actor, "can_read", c)])

    # -- changes: each returns the expected outcome and applies it if it succeeds ----------

    def write(self, actor: Actor, path: str, data: bytes) -> Outcome:
        refused = self.admit(actor)
        if refused:
            return refused
        resolved = self.resolve(path, actor)
        if not self.can(actor, "can_write", resolved):
            return err(NexusPermissionError)
        assert resolved not in self.dirs, f"the fuzz only writes files, not {resolved}"
        self.files[resolved] = data
        return ok(resolved)

    def delete(self, actor: Actor, path: str) -> Outcome:
        """``files.delete``: no alias resolution; tuples on the file go, and with them (if
        there were any) its share records."""
        refused = self.admit(actor)
        if refused:
            return refused
        if not self.can(actor, "can_write", path):
            return err(NexusPermissionError)
        if path in self.dirs:
            return err(NexusIsADirectoryError)
        if path not in self.files:
            return err(NexusFileNotFoundError)
        del self.files[path]
        tenant = tenant_of(path)
        dropped = {g for g in self.grants if within(g[2], path)}
        dropped_shares = {k for k in self.share_tuples if within(k[0], path)}
        self.grants -= dropped
        for key in dropped_shares:
            del self.share_tuples[key]
        if dropped or dropped_shares:
            for share in self.shares:
                if share.source == tenant and within(share.path, path):
                    share.revoked = True
        return ok(None)

    def grant(self, actor: Actor, user: str, relation: str, path: str) -> Outcome:
        """``rebac_create(("user", user), relation, ("file", path))``, ``user`` local to
        the path's tenant."""
        refused = self.admit(actor)
        if refused:
            return refused
        tenant = tenant_of(path)
        if not actor.is_admin and actor.tenant != tenant:
            return err(NexusPermissionError)
        if not self.can(actor, "owner", path):
            return err(NexusPermissionError)
        self.grants.add((user, relation, path))
        return ok(None)

    def foreign_grant(self, actor: Actor) -> Outcome:
        """A non-administrator naming another tenant (object or subject): always refused
        after admission, and nothing changes."""
        assert not actor.is_admin
        return self.admit(actor) or err(NexusPermissionError)

    def revoke(self, actor: Actor, user: str, relation: str, path: str) -> Outcome:
        """``rebac_delete(subject=…, relation=…, object=…)``: ``ok(False)`` for an absent
        tuple (before the owner check), ``ok(True)`` when deleted."""
        refused = self.admit(actor)
        if refused:
            return refused
        tenant = tenant_of(path)
        if not actor.is_admin and actor.tenant != tenant:
            return err(NexusPermissionError)
        key = (user, relation, path)
        if key not in self.grants:
            return ok(False)
        if not self.can(actor, "owner", path):
            return err(NexusPermissionError)
        self.grants.discard(key)
        return ok(True)

    def create_user(self, actor: Actor, tenant: str) -> Outcome:
        """``admin_create_key(user, name, tenant_id=tenant)``."""
        refused = self.admit(actor)
        if refused:
            return refused
        if not self.is_tenant_admin(actor, tenant):
            return err(NexusPermissionError)
        return ok(None)

    def admin_only(self, actor: Actor) -> Outcome | None:
        """Refusal of a system-administrator call (create_tenant, suspend, reactivate)."""
        if actor.is_admin:
            return None
        return self.admit(actor) or err(NexusPermissionError)

    def create_share(self, actor: Actor, path: str, target: str,
                     permission: str) -> tuple[Outcome, Share | None]:
        """``create_share``: ``(outcome, record)``; sharing an actively shared (path,
        target, permission) again renews the same record."""
        refused = self.admit(actor)
        if refused:
            return refused, None
        source = tenant_of(path)
        assert source is not None
        if target == source:
            return err(InvalidArgumentError), None
        if not self.can(actor, "owner", path):
            return err(NexusPermissionError), None
        if not self.exists(path):
            return err(NexusFileNotFoundError), None
        key = (path, permission, target)
        if key not in self.share_tuples:
            self.share_tuples[key] = next(self._gen)
        gen = self.share_tuples[key]
        for share in self.shares:
            if share.source == source and share.tuple_gen == gen and not share.revoked:
                return ok(share.share_id), share
        record = Share(source, target, path, permission, gen, len(self.shares))
        self.shares.append(record)
        return ok(None), record

    def revoke_share(self, actor: Actor, share: Share) -> Outcome:
        refused = self.admit(actor)
        if refused:
            return refused
        if not actor.is_admin and actor.tenant != share.source:
            return err(NexusPermissionError)
        if not self.can(actor, "owner", share.path):
            return err(NexusPermissionError)
        key = (share.path, share.permission, share.target)
        if self.share_tuples.get(key) == share.tuple_gen:
            del self.share_tuples[key]
        share.revoked = True
        return ok("revoked")

    def set_status(self, tenant: str, status: str) -> None:
        self.status[tenant] = status

    # -- what the invariant probes --------------------------------------------------------

    def direct_paths(self) -> list[str]:
        out = []
        for tenant in sorted(self.status):
            out += [root(tenant) + d for d in ("", "/shared", "/shared/docs", "/uploads")]
            out += [root(tenant) + f for f in FILES]
        return out

    def alias_paths(self) -> list[str]:
        out = []
        for target in sorted(self.status):
            for source in sorted(self.status):
                if source != target:
                    base = f"{root(target)}/shared/from-{source}"
                    out += [base + rel.format(s=source) for rel in ALIAS_NAMES]
        return out

    def looks_like_dir(self, path: str) -> bool:
        """Whether the invariant should list (rather than read) ``path``."""
        return not basename(path).endswith(".txt")
