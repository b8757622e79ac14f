"""The ReBAC API: create, delete, check, expand and list relation tuples.

Who may do what with tuples (where the product we replace leaked):

- a tuple belongs to the tenant that owns its object (for files, the tenant of the path);
  ``tenant_id`` in a call is checked against that, never trusted;
- only the system administrator, or a principal holding ``owner`` on the object, may
  create or delete a tuple on it;
- a tenant's principal sees and touches only its own tenant's tuples, and never names a
  subject of another tenant.

Subjects and objects are ``(type, id)`` pairs as in the guide, or ``(type, id, relation)``
for usersets such as ``("group", "eng", "member")``.
"""

from __future__ import annotations

import bisect
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from nexus import paths
from nexus.authz import RelationTuple, default_model_text, parse_model
from nexus.errors import (
    InvalidArgumentError,
    LimitExceededError,
    NexusFileNotFoundError,
    NexusPermissionError,
)
from nexus.service import incarnations
from nexus.service.access import AccessGate, Action
from nexus.service.audit import AuditLog
from nexus.service.permissions import FILE, PermissionEngine, RevisionTracker, SqlTupleReader
from nexus.service.shares import record_share
from nexus.store import Database, TenantRepository
from nexus.store.tuples import ModelRepository, StoredTuple, TupleRepository
from nexus.types import Principal, parse_timestamp

__all__ = ["MAX_BATCH_ITEMS", "MAX_LIST_ITEMS", "RebacService", "Ref", "parse_ref",
           "parse_subject"]

Ref = tuple[str, str, str | None]
# Items one rebac_check_batch may carry (docs/http-api.md, "Limits"). Each item after the
# first costs one more token of the tenant's rate limit: a batch is N requests' work.
MAX_BATCH_ITEMS = 1_000
# Items one listing call returns (its page size, and the most a caller may ask for).
MAX_LIST_ITEMS = 1_000
_ID = re.compile(r"[A-Za-z0-9._@+=:-]{1,255}")
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MEMBERSHIP_TYPES = frozenset({"group", "tenant"})
_REQUIRED_RELATIONS = (("file", "parent"), ("file", "owner"), ("file", "can_write"),
                       ("file", "can_read"), ("tenant", "member"))


def parse_ref(value: Any, what: str) -> Ref:
    """``("user", "alice")`` / ``["group", "eng", "member"]`` / ``"user:alice"`` → a ref."""
    if isinstance(value, str):
        head, _, relation = value.partition("#")
        type_, _, id_ = head.partition(":")
        value = (type_, id_, relation or None)
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise InvalidArgumentError(f"{what} must be a (type, id) pair, got {value!r}")
    type_, id_ = value[0], value[1]
    relation = value[2] if len(value) == 3 else None
    if not isinstance(type_, str) or not _TYPE.fullmatch(type_):
        raise InvalidArgumentError(f"{what} type {type_!r} is not a valid type name")
    if not isinstance(id_, str) or not id_:
        raise InvalidArgumentError(f"{what} id must be a non-empty string")
    if relation is not None and (not isinstance(relation, str) or not _TYPE.fullmatch(relation)):
        raise InvalidArgumentError(f"{what} relation {relation!r} is not a valid relation name")
    if type_ == FILE:
        id_ = paths.normalize(id_)
    elif id_ != "*" and not _ID.fullmatch(id_) and "/" not in id_:
        raise InvalidArgumentError(f"{what} id {id_!r} has characters outside A-Z a-z 0-9 ._@+=:-")
    return type_, id_, relation


def parse_subject(value: Any) -> Ref:
    """Like :func:`parse_ref`; ``("group", g)`` and ``("tenant", t)`` mean their members."""
    type_, id_, relation = parse_ref(value, "subject")
    if relation is None and type_ in _MEMBERSHIP_TYPES and id_ != "*":
        relation = "member"
    return type_, id_, relation


def _foreign_tenant(subject: Ref, tenant: str) -> str | None:
    """The other tenant a subject belongs to, if it is not ``tenant``'s own."""
    if subject[0] == FILE:
        other = paths.tenant_of(subject[1])
        return other if other != tenant else None
    if subject[0] == "tenant" and subject[1] != tenant:
        return subject[1]
    if "/" in subject[1]:
        return subject[1].split("/", 1)[0]
    return None


def _decode_tree(node: Any, token_of: incarnations.TokenOf) -> Any:
    """An expand tree with API-level names; references to dead tenants left out."""
    if isinstance(node, dict):
        return {k: _decode_tree(v, token_of) for k, v in node.items()}
    if isinstance(node, list):
        decoded = (_decode_tree(v, token_of) for v in node)
        return [v for v in decoded if v is not None]
    if isinstance(node, str) and ":" in node:
        type_, _, rest = node.partition(":")
        if type_ == FILE:
            return node
        id_, hash_, relation = rest.partition("#")
        shown = incarnations.decode_id(type_, id_, token_of)
        return None if shown is None else f"{type_}:{shown}{hash_}{relation}"
    return node


def _describe(t: Any) -> str:
    subject = f"{t.subject_type}:{t.subject_id}" + (
        f"#{t.subject_relation}" if t.subject_relation else "")
    return f"{t.object_type}:{t.object_id}#{t.relation}@{subject}"


def _public_id(stored: StoredTuple) -> str:
    return f"{stored.tenant_id}:{stored.tuple_id}"


def _tuple_dict(stored: StoredTuple) -> dict[str, Any]:
    out = stored.to_dict()
    out["tuple_id"] = _public_id(stored)
    return out


class RebacService:
    """Tuple management and permission queries, for principals."""

    def __init__(self, *, db: Database, engine: PermissionEngine, revisions: RevisionTracker,
                 audit: AuditLog, gate: AccessGate,
                 clock: Callable[[], float] = time.time,
                 charge: Callable[[Principal, int], None] | None = None) -> None:
        # ``charge(principal, n)`` takes n more tokens of the tenant's rate limit
        # (TenantService.charge_rate); admission already took one for the call.
        self._charge = charge
        self._gate = gate
        self._audit = audit
        self._db = db
        self._engine = engine
        self._revisions = revisions
        self._clock = clock

    # -- writes --------------------------------------------------------------------------

    def rebac_create(self, principal: Principal, subject: Any, relation: str, object: Any,
                     tenant_id: str | None = None, expires_at: Any = None) -> str:
        """Grant ``relation`` on ``object`` to ``subject``; returns the tuple id.

        Creating a tuple that exists refreshes its expiry and returns its id.
        """
        obj = parse_ref(object, "object")
        subj = parse_subject(subject)
        tenant = self._object_tenant(principal, obj, tenant_id)
        self._require_owner(principal, tenant, obj)
        self._check_subject(principal, tenant, subj)
        expiry = parse_timestamp(expires_at)
        now = self._clock()
        if expiry is not None and expiry <= now:
            raise InvalidArgumentError("expires_at is in the past")
        candidate = RelationTuple(obj[0], obj[1], relation, subj[0], subj[1], subj[2], expiry)
        self._engine.model_for(tenant).validate_tuple(obj[0], relation, subj[0], subj[1], subj[2])
        foreign = _foreign_tenant(subj, tenant)
        def _work(conn: Connection) -> Any:
            token_of = TenantRepository(conn).incarnation
            if token_of(tenant) is None:
                # Tuples live in an existing tenant's store; a grant never creates one.
                raise NexusFileNotFoundError(f"no tenant {tenant!r}", tenant_id=tenant)
            stored_form = RelationTuple(
                obj[0], incarnations.encode_id(obj[0], obj[1], token_of), relation,
                *incarnations.encode_subject(subj, token_of), expiry)
            repo = TupleRepository(conn)
            stored = repo.write(tenant, stored_form, now=now, created_by=principal.user_id)
            if foreign is not None and obj[0] == FILE and subj[0] != FILE:
                # An administrator's grant to another tenant is a share: listed, revocable,
                # and bound to the target's incarnation like the tuple.
                record_share(conn, source=tenant, target=foreign, path=obj[1],
                             permission=relation, tuple_id=stored.tuple_id, now=now,
                             expires_at=expiry, created_by=principal.user_id,
                             target_incarnation=token_of(foreign))
            revision = repo.bump_revision(tenant)
            self._audit.record(conn, principal, "grant", _describe(candidate), tenant=tenant)
            return stored, revision

        stored, revision = self._db.run(_work)
        self._revisions.advanced(tenant, revision)
        return _public_id(stored)

    def rebac_delete(self, principal: Principal, tuple_id: str | None = None, *,
                     subject: Any = None, relation: str | None = None, object: Any = None,
                     tenant_id: str | None = None) -> bool:
        """Delete a tuple by id, or by subject + relation + object; True if one existed."""
        if tuple_id is not None:
            tenant, _, raw_id = str(tuple_id).partition(":")
            paths.validate_tenant_id(tenant)
            self._gate.require_may_act_in(principal, tenant,
                                          "permission denied: tuple of another tenant")
            with self._db.read() as conn:
                stored = TupleRepository(conn).get(tenant, raw_id)
            if stored is None:
                return False
            obj: Ref = (stored.object_type, stored.object_id, None)
        else:
            if subject is None or relation is None or object is None:
                raise InvalidArgumentError("pass tuple_id, or subject, relation and object")
            obj = parse_ref(object, "object")
            subj = parse_subject(subject)
            tenant = self._object_tenant(principal, obj, tenant_id)
            with self._db.read() as conn:
                encoded = incarnations.encode_refs(TenantRepository(conn).incarnation, obj,
                                                   subj)
                if encoded is None:
                    return False  # names a tenant that does not exist: no such tuple
                (otype, oid, _), stored_subj = encoded  # type: ignore[misc]
                stored = TupleRepository(conn).find(tenant, RelationTuple(
                    otype, oid, relation, *stored_subj))
            if stored is None:
                return False
        self._require_owner(principal, tenant, obj)
        def _work(conn: Connection) -> Any:
            repo = TupleRepository(conn)
            deleted = repo.delete(tenant, stored.tuple_id)
            revision = repo.bump_revision(tenant)
            self._audit.record(conn, principal, "revoke", _describe(stored), tenant=tenant)
            return deleted, revision

        deleted, revision = self._db.run(_work)
        self._revisions.advanced(tenant, revision)
        return deleted

    def rebac_write_model(self, principal: Principal, model: str,
                          tenant_id: str | None = None) -> dict[str, Any]:
        """Replace the tenant's authorization model (OpenFGA DSL, schema 1.1).

        The model must keep what the server relies on — ``user``, ``tenant#member`` and
        ``file`` with ``parent``, ``owner``, ``can_write`` and ``can_read`` — and every
        tuple the tenant already has must still be valid under it; otherwise nothing
        changes. The tenant's administrators and the system administrator may do this.
        """
        tenant = self._caller_tenant(principal, tenant_id)
        self._require_owner(principal, tenant, ("tenant", tenant, None))
        parsed = validated_model(model)
        now = self._clock()
        model_id = uuid.uuid4().hex
        def _work(conn: Connection) -> Any:
            repo = TupleRepository(conn)
            problems = []
            after = None
            while batch := repo.list(tenant, now=now, include_expired=True, after=after):
                for t in batch:
                    try:
                        parsed.validate_tuple(t.object_type, t.relation, t.subject_type,
                                              t.subject_id, t.subject_relation)
                    except InvalidArgumentError as exc:
                        problems.append(f"{_describe(t)}: {exc}")
                after = batch[-1].tuple_id
            if problems:
                raise InvalidArgumentError(
                    f"{len(problems)} existing tuples would be invalid under this model, "
                    f"e.g. {'; '.join(problems[:3])}", invalid_tuples=len(problems))
            ModelRepository(conn).add(tenant, model_id, model, now)
            revision = repo.bump_revision(tenant)
            self._audit.record(conn, principal, "model.write", f"model:{model_id}",
                               tenant=tenant)
            return revision

        revision = self._db.run(_work)
        self._revisions.advanced(tenant, revision)
        return {"tenant_id": tenant, "model_id": model_id, "revision": f"{tenant}@{revision}"}

    def rebac_read_model(self, principal: Principal,
                         tenant_id: str | None = None) -> dict[str, Any]:
        """The tenant's model in force: ``{"model_id", "model"}`` (``default`` if none)."""
        tenant = self._caller_tenant(principal, tenant_id)
        with self._db.read() as conn:
            latest = ModelRepository(conn).latest(tenant)
        if latest is None:
            return {"tenant_id": tenant, "model_id": "default", "model": default_model_text()}
        return {"tenant_id": tenant, "model_id": latest[0], "model": latest[1]}

    def rebac_revision(self, principal: Principal, tenant_id: str | None = None) -> str:
        """The consistency token of a tenant's tuples (pass it as ``at_least``)."""
        tenant = self._caller_tenant(principal, tenant_id)
        return f"{tenant}@{self._revisions.current(tenant, at_least=0)}"

    # -- queries -------------------------------------------------------------------------

    def rebac_check(self, principal: Principal, subject: Any, permission: str, object: Any,
                    tenant_id: str | None = None, at_least: str | None = None) -> bool:
        """Whether ``subject`` has ``permission`` on ``object`` (in the object's tenant)."""
        return self.rebac_check_batch(principal, [(subject, permission, object)],
                                      tenant_id=tenant_id, at_least=at_least)[0]

    def rebac_check_batch(self, principal: Principal, checks: Sequence[Any],
                          tenant_id: str | None = None, at_least: str | None = None) -> list[bool]:
        """:meth:`rebac_check` for each ``(subject, permission, object)``, in order."""
        if not isinstance(checks, list | tuple):
            raise InvalidArgumentError("checks must be a list of (subject, permission, object)")
        if len(checks) > MAX_BATCH_ITEMS:  # one call must not cost unbounded work
            raise LimitExceededError(f"at most {MAX_BATCH_ITEMS} checks per batch",
                                     limit=MAX_BATCH_ITEMS)
        parsed = []
        for item in checks:  # validate and authorise every item before any work
            if not isinstance(item, list | tuple) or len(item) != 3:
                raise InvalidArgumentError("each check is (subject, permission, object)")
            subj, permission, obj = parse_subject(item[0]), item[1], parse_ref(item[2],
                                                                                      "object")
            tenant = self._object_tenant(principal, obj, tenant_id)
            parsed.append((subj, permission, obj, tenant))
        if self._charge is not None and len(parsed) > 1:
            # Charged after validation (a refused batch costs one token), before any work.
            self._charge(principal, len(parsed) - 1)
        for tenant in {p[3] for p in parsed}:
            self._wait_for(tenant, at_least)
        results = []
        with self._db.read() as conn:  # one connection for the whole call, not per item
            token_of = incarnations.memoised(TenantRepository(conn).incarnation)
            checkers: dict[tuple[str, Any], Any] = {}  # one per tenant and subject
            for subj, permission, obj, tenant in parsed:
                encoded = incarnations.encode_refs(token_of, obj, subj)
                if encoded is None:
                    results.append(False)  # a tenant that does not exist holds nothing
                    continue
                (otype, oid, _), stored_subj = encoded  # type: ignore[misc]
                checker = checkers.get((tenant, stored_subj))
                if checker is None:
                    checker = checkers[(tenant, stored_subj)] = self._checker(
                        conn, tenant, stored_subj)
                results.append(checker.check(otype, oid, permission, *stored_subj))
        return results

    def rebac_expand(self, principal: Principal, permission: str, object: Any,
                     tenant_id: str | None = None) -> dict[str, Any]:
        """The userset tree of ``permission`` on ``object`` (one level per node)."""
        obj = parse_ref(object, "object")
        tenant = self._object_tenant(principal, obj, tenant_id)
        with self._db.read() as conn:
            token_of = incarnations.memoised(TenantRepository(conn).incarnation)
            tree = self._checker(conn, tenant, None).expand(
                obj[0], incarnations.encode_id(obj[0], obj[1], token_of), permission)
            return _decode_tree(tree, token_of)

    def rebac_list_objects(self, principal: Principal, subject: Any, permission: str,
                           object_type: str, tenant_id: str | None = None,
                           limit: int | None = None, after: str | None = None) -> list[str]:
        """Ids of the objects of ``object_type`` on which ``subject`` has ``permission``,
        sorted; a page of at most ``limit`` (≤ 1,000) ids after ``after``. Without a
        ``limit``, more than 1,000 matches is a :class:`LimitExceededError`."""
        page = _page_size(limit)
        subj = parse_subject(subject)
        tenant = self._caller_tenant(principal, tenant_id)
        with self._db.read() as conn:
            token_of = incarnations.memoised(TenantRepository(conn).incarnation)
            encoded = incarnations.encode_refs(token_of, None, subj)
            if encoded is None:
                return []
            subj = encoded[1]  # type: ignore[assignment]
            checker = self._checker(conn, tenant, subj)
            shown = f"{subj[0]}:{subj[1]}" + (f"#{subj[2]}" if subj[2] else "")
            if object_type == FILE:
                # A file's stored id is its path, so the checker can page itself and stop
                # after the page (one more, to tell "exactly a page" from "more").
                found = checker.list_objects(
                    shown, permission, object_type, after=after, limit=page + 1,
                    accept=lambda oid: paths.tenant_of(oid) == tenant)
                after = None
            else:
                found = checker.list_objects(shown, permission, object_type)
            found = [d for oid in found
                     if (d := incarnations.decode_id(object_type, oid, token_of)) is not None]
        return _paged(sorted(found), after, page, limit, "objects")

    def rebac_list_subjects(self, principal: Principal, object: Any, permission: str,
                            subject_type: str = "user",
                            tenant_id: str | None = None, limit: int | None = None,
                            after: str | None = None) -> list[list[str]]:
        """``[type, id]`` (or ``[type, id, relation]``) of subjects with ``permission``,
        sorted by ``type:id``; paged like :meth:`rebac_list_objects` (``after`` is the
        last ``type:id`` seen)."""
        page = _page_size(limit)
        obj = parse_ref(object, "object")
        tenant = self._object_tenant(principal, obj, tenant_id)
        with self._db.read() as conn:
            token_of = incarnations.memoised(TenantRepository(conn).incarnation)
            subjects = self._checker(conn, tenant, None).list_subjects(
                obj[0], incarnations.encode_id(obj[0], obj[1], token_of), permission,
                subject_type)
            shown = [(s.type, incarnations.decode_id(s.type, s.id, token_of), s.relation)
                     for s in subjects]
        rows = {f"{t}:{i}" + (f"#{r}" if r else ""): [t, i] + ([r] if r else [])
                for t, i, r in shown if i is not None}
        return [rows[key] for key in _paged(sorted(rows), after, page, limit, "subjects")]

    def rebac_list_tuples(self, principal: Principal, subject: Any = None,
                          relation: str | None = None, object: Any = None,
                          tenant_id: str | None = None,
                          include_expired: bool = False, limit: int | None = None,
                          after: str | None = None) -> list[dict[str, Any]]:
        """Stored tuples matching the filters, by tenant then tuple id. A tenant principal
        sees only its tenant's; the system administrator sees every tenant's unless
        ``tenant_id`` narrows it.

        A page of at most ``limit`` (≤ 1,000) tuples after the tuple id ``after`` (the last
        ``tuple_id`` of the previous page); a page shorter than ``limit`` is the last.
        Without a ``limit``, more than 1,000 matches is a :class:`LimitExceededError`.
        """
        page = _page_size(limit)
        after_tenant, after_id = _tuple_cursor(after)
        subj = parse_subject(subject) if subject is not None else None
        obj = parse_ref(object, "object") if object is not None else None
        if obj is not None:
            tenants = [self._object_tenant(principal, obj, tenant_id)]
        elif tenant_id is not None or not self._gate.is_system_admin(principal):
            tenants = [self._caller_tenant(principal, tenant_id)]
        else:
            tenants = self._all_tenants()
        now = self._clock()
        out: list[dict[str, Any]] = []
        with self._db.read() as conn:
            # One lookup per tenant named, not one per row decoded.
            token_of = incarnations.memoised(TenantRepository(conn).incarnation)
            encoded = incarnations.encode_refs(token_of, obj, subj)
            if encoded is None:
                return []
            obj, subj = encoded
            repo = TupleRepository(conn)
            # One more than a page is read, to tell "exactly a page" from "more".
            want = page + 1
            for tenant in tenants:
                if after_tenant is not None and tenant < after_tenant:
                    continue
                cursor = after_id if tenant == after_tenant else None
                while len(out) < want and (batch := repo.list(
                        tenant, subject=subj[:2] if subj else None, relation=relation,
                        obj=obj[:2] if obj else None, include_expired=include_expired,
                        now=now, after=cursor, limit=want - len(out))):
                    out.extend(shown for t in batch
                               if (shown := incarnations.decode_tuple(_tuple_dict(t), token_of))
                               is not None)
                    cursor = batch[-1].tuple_id
                if len(out) >= want:
                    break
        if len(out) > page and limit is None:
            raise _too_many("tuples")
        return out[:page]

    # -- rules ---------------------------------------------------------------------------

    def _object_tenant(self, principal: Principal, obj: Ref, tenant_id: str | None) -> str:
        """The tenant owning ``obj``; a ``tenant_id`` that disagrees is refused."""
        if obj[0] == FILE:
            tenant = paths.tenant_of(obj[1])
            if tenant is None:
                raise InvalidArgumentError(
                    f"{obj[1]} is outside /tenants/<id>: permissions apply to tenant paths")
            # A tuple lives with its object. For the system administrator a disagreeing
            # tenant_id is only a hint (the guide's Step 4 passes the sharing tenant);
            # anyone else is refused.
            if tenant_id is not None and tenant_id != tenant \
                    and not self._gate.is_system_admin(principal):
                raise NexusPermissionError(f"permission denied: {obj[1]} is not in "
                                           f"tenant {tenant_id}")
        else:
            tenant = self._caller_tenant(principal, tenant_id)
        self._gate.require_may_act_in(principal, tenant, f"permission denied: {obj[0]}:"
                                      f"{obj[1]} belongs to another tenant")
        return tenant

    def _caller_tenant(self, principal: Principal, tenant_id: str | None) -> str:
        if self._gate.is_system_admin(principal):
            if tenant_id is None:
                raise InvalidArgumentError("tenant_id is required for this call")
            return paths.validate_tenant_id(tenant_id)
        if principal.tenant_id is None:
            raise NexusPermissionError("permission denied: the key belongs to no tenant")
        home = principal.tenant_id if tenant_id is None else paths.validate_tenant_id(tenant_id)
        self._gate.require_may_act_in(principal, home)
        return home

    def _require_owner(self, principal: Principal, tenant: str, obj: Ref) -> None:
        target = obj[1] if obj[0] == FILE else paths.tenant_root(tenant)
        if not self._gate.allowed(principal, Action.OWN, target):
            raise NexusPermissionError(
                f"permission denied: only an owner of {obj[0]}:{obj[1]} may change its "
                "permissions", path=target, permission="owner")

    def _check_subject(self, principal: Principal, tenant: str, subj: Ref) -> None:
        if _foreign_tenant(subj, tenant) is not None \
                and not self._gate.may_grant_across_tenants(principal):
            raise NexusPermissionError(
                "permission denied: only the system administrator may grant to another "
                "tenant's users")
        if subj[0] == "tenant":
            paths.validate_tenant_id(subj[1])

    def _wait_for(self, tenant: str, at_least: str | None) -> None:
        if at_least is None:
            return
        token_tenant, _, revision = str(at_least).partition("@")
        if token_tenant != tenant or not (revision.isascii() and revision.isdigit()):
            raise InvalidArgumentError(f"at_least {at_least!r} is not a token of {tenant}")
        if self._revisions.current(tenant, at_least=int(revision)) < int(revision):
            raise NexusFileNotFoundError(f"revision {revision} of {tenant} is unknown")

    def _checker(self, conn: Any, tenant: str, subject: Ref | None) -> Any:
        """A checker over ``tenant``'s store for a *stored-form* subject."""
        sql = SqlTupleReader(TupleRepository(conn), tenant, self._clock())
        # The subject as a principal: its tenant membership is added as a contextual tuple,
        # and a user of another tenant ("beta~<token>/bob") does not see wildcard grants —
        # exactly what the enforcement point does for that user.
        as_principal = None
        incarnation = None
        if subject is not None and subject[0] == "user" and subject[1] != "*" \
                and subject[2] is None:
            home, _, user = subject[1].rpartition("/")
            parsed = incarnations.split(home) if home else None
            as_principal = Principal(user_id=user,
                                     tenant_id=parsed[0] if parsed else tenant,
                                     incarnation=parsed[1] if parsed else None)
            incarnation = self._engine.incarnation_of(as_principal)
        return self._engine.checker(conn, tenant, sql, as_principal, incarnation)

    def _all_tenants(self) -> list[str]:
        with self._db.read() as conn:
            return list(TenantRepository(conn).iter_ids())


def _page_size(limit: int | None) -> int:
    if limit is None:
        return MAX_LIST_ITEMS
    if limit < 1:
        raise InvalidArgumentError("limit must be at least 1", param="limit")
    if limit > MAX_LIST_ITEMS:
        raise LimitExceededError(f"limit is at most {MAX_LIST_ITEMS} per page; page with "
                                 "'after'", limit=MAX_LIST_ITEMS, param="limit")
    return limit


def _too_many(what: str) -> LimitExceededError:
    # Not a silently cut list: the caller learns there is more and how to get it.
    return LimitExceededError(f"more than {MAX_LIST_ITEMS} {what} match; pass 'limit' "
                              f"(at most {MAX_LIST_ITEMS}) and 'after' to page",
                              limit=MAX_LIST_ITEMS)


def _paged(keys: list[str], after: str | None, page: int, limit: int | None,
           what: str) -> list[str]:
    """The page of sorted ``keys`` after ``after``; too many without a limit is an error."""
    if after is not None:
        keys = keys[bisect.bisect_right(keys, after):]
    if limit is None and len(keys) > page:
        raise _too_many(what)
    return keys[:page]


def _tuple_cursor(after: str | None) -> tuple[str | None, str | None]:
    """``"<tenant>:<tuple id>"`` (a public tuple id) → its two parts."""
    if after is None:
        return None, None
    tenant, colon, tuple_id = after.partition(":")
    if not colon or not tuple_id:
        raise InvalidArgumentError("after must be a tuple_id from a previous page",
                                   param="after")
    return paths.validate_tenant_id(tenant), tuple_id


def validated_model(text: object) -> Any:
    """The parsed :class:`~nexus.authz.AuthzModel` of a tenant's model text, with every
    check a model write passes: the DSL itself, and what the server relies on — ``user``,
    ``tenant#member`` and ``file`` with ``parent``, ``owner``, ``can_write`` and
    ``can_read`` (also used by ``import_tenant``)."""
    if not isinstance(text, str):
        raise InvalidArgumentError("model must be the DSL text")
    parsed = parse_model(text)
    for type_name, relation in _REQUIRED_RELATIONS:
        if not parsed.has_relation(type_name, relation):
            raise InvalidArgumentError(
                f"the model must define {type_name}#{relation}: the server enforces "
                "file access with it")
    if "user" not in parsed.types:
        raise InvalidArgumentError("the model must define type user")
    return parsed
