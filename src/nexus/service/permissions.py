"""ReBAC evaluation for principals: the engine behind :class:`~nexus.service.access.AccessGate`.

Pieces, each small:

- :class:`SqlTupleReader` adapts the tuple repository to the checker's ``TupleReader``
  protocol, with a one-query prefetch of a path and all its ancestors;
- :class:`RevisionTracker` knows each tenant's tuple revision; writes in this process
  advance it at once, other processes' writes as soon as :mod:`nexus.service.coherence`
  delivers their event (within ``ttl`` seconds when it cannot);
- :class:`CheckCache` memoises answers keyed by (tenant, revision, subject, relation,
  object) and never past the expiry of a tuple the answer depended on;
- :class:`PermissionEngine` turns a principal into a subject of the object's tenant
  and runs the :class:`~nexus.authz.Checker`.

A user id is local to its tenant. A principal of another tenant is checked as
``user:<its tenant>/<its id>`` — a name no local user can have (user ids contain no
``/``) — and wildcard grants (``user:*``) never reach it, so only grants made to it
explicitly (shares) apply.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nexus import paths
from nexus.authz import (
    AuthzModel,
    Checker,
    CheckRequest,
    LayeredTupleReader,
    PathParentReader,
    RelationTuple,
    TupleReader,
    default_model,
    parse_model,
)
from nexus.authz.schema import WILDCARD
from nexus.errors import NexusError
from nexus.service import incarnations
from nexus.service.coherence import Coherence
from nexus.service.tenant_state import TenantStates
from nexus.store import Database, FileRepository
from nexus.store.tuples import ModelRepository, TupleRepository
from nexus.tenancy.lifecycle import BLOCKED
from nexus.types import Principal

__all__ = ["CheckCache", "PermissionEngine", "RevisionTracker", "SqlTupleReader", "subject_for"]

FILE = "file"


class SqlTupleReader:
    """A ``TupleReader`` over one tenant's stored tuples, read at one instant ``now``.

    It records the earliest expiry among the tuples it returned (``earliest_expiry``):
    an answer computed from them is valid only until then.
    """

    def __init__(self, repo: TupleRepository, tenant_id: str, now: float) -> None:
        self._repo = repo
        self._tenant = tenant_id
        self._now = now
        self._cache: dict[tuple[str, str, str], list[RelationTuple]] = {}
        self._prefetched: set[tuple[str, str]] = set()
        self.earliest_expiry: float | None = None

    def prefetch(self, object_type: str, object_ids: Iterable[str]) -> None:
        """Load every live tuple on these objects in one query."""
        wanted = [oid for oid in dict.fromkeys(object_ids)
                  if (object_type, oid) not in self._prefetched]
        if not wanted:
            return
        for row in self._repo.read_objects(self._tenant, object_type, wanted, self._now):
            t = self._track(RelationTuple(*row))
            self._cache.setdefault((t.object_type, t.object_id, t.relation), []).append(t)
        self._prefetched.update((object_type, oid) for oid in wanted)

    def objects_with_tuples(self, object_type: str) -> set[str]:
        """Prefetched objects of ``object_type`` that have at least one live tuple."""
        return {oid for (otype, oid, _rel) in self._cache if otype == object_type}

    def read(self, object_type: str, object_id: str, relation: str) -> Iterable[RelationTuple]:
        key = (object_type, object_id, relation)
        found = self._cache.get(key)
        if found is not None:
            return found
        if (object_type, object_id) in self._prefetched:
            return ()
        found = [self._track(RelationTuple(*row)) for row in
                 self._repo.read(self._tenant, object_type, object_id, relation, self._now)]
        self._cache[key] = found
        return found

    def read_reverse(self, subject_type: str, subject_id: str, subject_relation: str | None,
                     object_type: str, relation: str) -> Iterable[RelationTuple]:
        rows = self._repo.read_reverse(self._tenant, subject_type, subject_id, subject_relation,
                                       object_type, relation, self._now)
        return [self._track(RelationTuple(*row)) for row in rows]

    def _track(self, t: RelationTuple) -> RelationTuple:
        if t.expires_at is not None and (self.earliest_expiry is None
                                         or t.expires_at < self.earliest_expiry):
            self.earliest_expiry = t.expires_at
        return t


class _LocalSubjectsOnly:
    """Hides wildcard grants: ``user:*`` in a tenant means every user *of that tenant*."""

    def __init__(self, inner: TupleReader) -> None:
        self._inner = inner

    def read(self, object_type: str, object_id: str, relation: str) -> Iterable[RelationTuple]:
        return [t for t in self._inner.read(object_type, object_id, relation)
                if t.subject_id != WILDCARD]

    def read_reverse(self, subject_type: str, subject_id: str, subject_relation: str | None,
                     object_type: str, relation: str) -> Iterable[RelationTuple]:
        if subject_id == WILDCARD:
            return ()
        return self._inner.read_reverse(subject_type, subject_id, subject_relation,
                                        object_type, relation)


class RevisionTracker:
    """Each tenant's tuple revision as this process knows it: what this process wrote at
    once, other processes' changes when :mod:`~nexus.service.coherence` says they moved
    (or, when it cannot say, within ``ttl`` seconds)."""

    def __init__(self, db: Database, *, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 coherence: Coherence | None = None) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._known: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._coherence = coherence or Coherence()
        self._coherence.subscribe(self._changed, self.forget_all)

    def current(self, tenant_id: str, at_least: int = 0) -> int:
        """The tenant's revision, re-read from the database when older than ``ttl`` or
        below ``at_least`` (a consistency token the caller holds)."""
        self._coherence.sync()
        known = self._known.get(tenant_id)
        now = self._clock()
        if known is not None and known[0] >= at_least and now - known[1] < self._ttl:
            return known[0]
        with self._db.read() as conn:
            revision = TupleRepository(conn).revision(tenant_id)
        self.advanced(tenant_id, revision)
        return revision

    def advanced(self, tenant_id: str, revision: int) -> None:
        """Record a revision this process wrote (or read)."""
        with self._lock:
            known = self._known.get(tenant_id)
            if known is None or revision >= known[0]:
                self._known[tenant_id] = (revision, self._clock())

    def forget(self, tenant_id: str) -> None:
        """Re-read the tenant's revision next time (another process moved it)."""
        with self._lock:
            self._known.pop(tenant_id, None)

    def forget_all(self) -> None:
        with self._lock:
            self._known.clear()

    def _changed(self, kind: str, tenant_id: str) -> None:
        # A deleted tenant's revision row goes too, so TENANT events count as well.
        self.forget(tenant_id)


class CheckCache:
    """A bounded LRU of check answers, each valid until an absolute time."""

    def __init__(self, *, max_entries: int = 100_000, ttl: float = 60.0) -> None:
        self._entries: OrderedDict[tuple[Any, ...], tuple[bool, float]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...], now: float) -> bool | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] <= now:
            self.misses += 1
            return None
        self.hits += 1
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)  # least recently used goes first
        return entry[0]

    def put(self, key: tuple[Any, ...], allowed: bool, now: float,
            expires: float | None) -> None:
        valid_until = now + self._ttl if expires is None else min(now + self._ttl, expires)
        with self._lock:
            self._entries[key] = (allowed, valid_until)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)


@functools.lru_cache(maxsize=256)
def _parsed(model_id: str, dsl: str) -> AuthzModel:
    # Model versions are immutable, so a parse keyed by id never goes stale.
    return parse_model(dsl)


def subject_for(principal: Principal, object_tenant: str, incarnation: str) -> tuple[str, str]:
    """The ``user`` subject id naming ``principal`` (of its tenant's ``incarnation``)
    inside ``object_tenant``'s store: its bare id at home, ``<tenant>~<token>/<id>``
    elsewhere — a name no local user can have, and no later life of its tenant either."""
    if principal.tenant_id == object_tenant:
        return "user", principal.user_id
    return "user", f"{incarnations.ref(str(principal.tenant_id), incarnation)}/{principal.user_id}"


class PermissionEngine:
    """Answers "may this principal have relation R on these paths?" for non-admins."""

    def __init__(self, *, db: Database, revisions: RevisionTracker, cache: CheckCache,
                 states: TenantStates, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._revisions = revisions
        self._cache = cache
        self.cache = cache  # read by the metrics collector
        self._states = states
        self._clock = clock
        self._models: dict[str, tuple[tuple[str | None, int], AuthzModel]] = {}
        #: Uncached evaluations and the time they took (read by /metrics).
        self.evaluations = 0
        self.evaluation_seconds = 0.0

    def model_for(self, tenant_id: str) -> AuthzModel:
        """The authorization model in force for a tenant: its own if it wrote one, else the
        default. Parsed once per model id; re-checked when the tenant's revision moves
        (a model write bumps it)."""
        version = (self._states.incarnation(tenant_id), self._revisions.current(tenant_id))
        cached = self._models.get(tenant_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        with self._db.read() as conn:
            latest = ModelRepository(conn).latest(tenant_id)
        model = default_model() if latest is None else _parsed(latest[0], latest[1])
        self._models[tenant_id] = (version, model)
        return model

    def check_paths(self, principal: Principal, relation: str,
                    object_ids: Sequence[str]) -> list[bool]:
        """One answer per path, all in one tenant; one query for the uncached ones.

        Any error while evaluating denies (fail closed).
        """
        if not object_ids:
            return []
        tenant = paths.tenant_of(object_ids[0])
        if tenant is None or principal.tenant_id is None:
            return [False] * len(object_ids)
        incarnation = self.incarnation_of(principal)
        if incarnation is None:
            return [False] * len(object_ids)
        if principal.tenant_id != tenant:
            # A share out of a suspended (or vanished) tenant stops resolving.
            state = self._states.get(tenant)
            if state is None or state.status in BLOCKED:
                return [False] * len(object_ids)
        subject = subject_for(principal, tenant, incarnation)
        # The object tenant's life is part of the key: a deleted tenant's revisions start
        # again at 1, and an answer about its old life must not hold for the next.
        life = self._states.incarnation(tenant)
        if life is None:
            return [False] * len(object_ids)
        revision = self._revisions.current(tenant)
        now = self._clock()
        keys = [(tenant, life, revision, incarnation, subject, relation, oid)
                for oid in object_ids]
        answers = [self._cache.get(key, now) for key in keys]
        missing = [i for i, a in enumerate(answers) if a is None]
        if missing:
            started = time.perf_counter()
            try:
                computed, expiry = self._evaluate(principal, incarnation, tenant, subject,
                                                  relation, [object_ids[i] for i in missing],
                                                  now)
            except NexusError:
                return [False] * len(object_ids)
            finally:
                self.evaluations += 1
                self.evaluation_seconds += time.perf_counter() - started
            for i, allowed in zip(missing, computed, strict=True):
                answers[i] = allowed
                self._cache.put(keys[i], allowed, now, expiry)
        return [bool(a) for a in answers]

    def incarnation_of(self, principal: Principal) -> str | None:
        """The live incarnation ``principal`` acts in: its own if it is still its tenant's
        current one, else ``None`` (a principal of a deleted tenant matches nothing)."""
        if principal.tenant_id is None:
            return None
        current = self._states.incarnation(principal.tenant_id)
        if current is None or (principal.incarnation is not None
                               and principal.incarnation != current):
            return None
        return current

    def _evaluate(self, principal: Principal, incarnation: str, tenant: str,
                  subject: tuple[str, str],
                  relation: str, object_ids: list[str],
                  now: float) -> tuple[list[bool], float | None]:
        with self._db.read() as conn:
            sql = SqlTupleReader(TupleRepository(conn), tenant, now)
            wanted = set(object_ids)
            for oid in object_ids:
                wanted.update(paths.ancestors(oid))
            sql.prefetch(FILE, sorted(wanted))
            depth = max(oid.count("/") for oid in object_ids)
            checker = self.checker(conn, tenant, sql, principal, incarnation,
                                   path_depth=depth)
            # A file with no tuples of its own can only inherit, and siblings inherit the
            # same: evaluate one per parent directory and share the answer.
            with_tuples = sql.objects_with_tuples(FILE)
            representative: dict[str, str] = {}
            for oid in object_ids:
                if oid not in with_tuples:
                    representative.setdefault(paths.parent(oid) or "/", oid)
            distinct = [oid for oid in object_ids
                        if oid in with_tuples or representative[paths.parent(oid) or "/"] == oid]
            requests = [CheckRequest(FILE, oid, relation, subject[0], subject[1])
                        for oid in distinct]
            answers = dict(zip(distinct, checker.check_many(requests), strict=True))
            return [answers[oid] if oid in answers
                    else answers[representative[paths.parent(oid) or "/"]]
                    for oid in object_ids], sql.earliest_expiry

    def checker(self, conn: Any, tenant: str, sql: SqlTupleReader,
                principal: Principal | None = None, incarnation: str | None = None, *,
                path_depth: int = 64) -> Checker:
        """A checker over ``tenant``'s tuples: parents derived from paths, the principal's
        membership of its tenant's ``incarnation`` added as a contextual tuple, foreign
        principals without wildcard grants."""
        reader: TupleReader = sql
        if principal is not None and principal.tenant_id is not None \
                and incarnation is not None:
            subject = subject_for(principal, tenant, incarnation)
            membership = RelationTuple("tenant",
                                       incarnations.ref(principal.tenant_id, incarnation),
                                       "member", *subject)
            base: TupleReader = sql if principal.tenant_id == tenant else _LocalSubjectsOnly(sql)
            reader = LayeredTupleReader(base, [membership])
        files = FileRepository(conn)

        def children(directory: str) -> list[str]:
            return [r.path for r in files.children(tenant, directory, after=None, limit=100_000)]

        # Inheritance down the tree costs one level per path segment; the fixed limit of 25
        # bounds the model's own recursion on top of that.
        return Checker(self.model_for(tenant), PathParentReader(reader, list_children=children),
                       max_depth=25 + 2 * path_depth)
