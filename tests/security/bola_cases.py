"""The expectation table of the BOLA matrix: for each RPC method (and each HTTP route), the
variants of parameters aimed at acme's resources — plus identifier swaps naming beta
where the path names acme, or the reverse — and which roles each variant allows.

Reading a row: ``v("private", lambda w, r: {...}, ADMINS)`` means "with these parameters,
the system administrator and acme's tenant administrator succeed; every other
authenticated role is refused with 403; every broken credential with 401". ``status``
overrides the expected status for some roles (404 only where the caller may read the
parent; 400/409/412 where an allowed caller's request is itself invalid).

The rules the table encodes (from ``src/nexus/service``):

- files: ``can_write`` on the path to change it, ``can_read`` to read it, inherited down
  the tree; owner ⊇ can_write ⊇ can_read; a share gives beta's members ``can_read`` on
  ``/tenants/acme/outbox``; the system partition (``/``, ``/tenants``, ``/exports``) is the
  system administrator's; ``.tenant.json`` is read like a file, written by the system
  administrator only;
- tuples: only a member of the object's tenant queries them; only an owner of the object
  (the tenant root for non-file objects) changes them; only the system administrator
  names another tenant's subject; a ``tenant_id`` that disagrees with the object is
  refused (the system administrator's is a hint);
- keys, usage, billing, audit, shares listing: the tenant administrator (owner of
  ``/tenants/<id>``) of that tenant, or the system administrator; key updates, tenant
  records and lifecycle, export/import, fleet metrics: the system administrator only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nexus.authz import default_model_text

from .bola_world import (
    ALIAS_BRIEF,
    ALIAS_DIR,
    AUTHENTICATED,
    BETA_DOC,
    BETA_SHARED,
    BRIEF,
    DOC,
    DOCUMENT,
    EXPORT,
    GAMMA_ALIAS,
    GAMMA_DOC,
    OUTBOX,
    PRIVATE,
    SECRET,
    SHARED,
    World,
)

__all__ = ["HOLES", "RPC_CASES", "ROUTE_CASES", "Case"]

Builder = Callable[[World, str], dict[str, Any]]
Check = Callable[[World, str, Any], None]

# admin, tenant admin, editor, viewer, user of the other tenant (beta)
A, T, E, V, X = "admin", "tenant_admin", "editor", "viewer", "other_tenant"
ADMIN = frozenset({A})
ADMINS = frozenset({A, T})                    # system admin + acme's tenant admin
WRITERS = ADMINS | {E}                        # … + can_write on /tenants/acme/shared
MEMBERS = WRITERS | {V}                       # … + can_read on /tenants/acme/shared
BETA = frozenset({A, X})                      # beta's side
EVERYONE = MEMBERS | {X}                      # every working key outside gamma
WORKING = EVERYONE | {"suspended"}            # every key that authenticates
NOBODY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Case:
    """One variant of one method or route; a cell is a ``Case`` × a role."""

    group: str                      # RPC method name, or "GET /api/fs/content" …
    variant: str
    build: Builder
    allow: frozenset[str]
    status: Mapping[str, int] = field(default_factory=dict)
    #: Expected status for every role, credential or not (checked before authentication).
    fixed: int | None = None
    check: Check | None = None      # on the result of every 2xx cell
    verify: Check | None = None     # on the world after every cell, whatever the outcome
    #: A 2xx leaves nothing changed: the stored state is compared as for a refusal.
    noop: bool = False
    #: A 2xx changes the world's fixed resources (not only throw-away ones): the next
    #: cell gets a fresh copy of the world.
    destructive: bool = False


def _b64(data: bytes) -> dict[str, str]:
    return {"__bytes__": base64.b64encode(data).decode()}


# -- result checks ---------------------------------------------------------------------------

def _tenant_of_role(role: str) -> str | None:
    from .bola_world import USERS

    return USERS[role][0] if role in USERS else None


def _entries_within(root: str) -> Check:
    def check(_w: World, _role: str, result: Any) -> None:
        for entry in result["entries"]:
            assert entry["path"].startswith(root + "/"), f"{entry['path']} outside {root}"
    return check


def _no_entries_but_for_admin(_w: World, role: str, result: Any) -> None:
    assert role == A or result["entries"] == [], result


def _own_tuples_only(_w: World, role: str, result: Any) -> None:
    tenant = _tenant_of_role(role)
    if tenant is None:
        return
    foreign = [t["tuple_id"] for t in result if not t["tuple_id"].startswith(tenant + ":")]
    assert not foreign, f"{role} sees tuples of other tenants: {foreign}"


def _acme_tuples_only(_w: World, _role: str, result: Any) -> None:
    assert all(t["tuple_id"].startswith("acme:") for t in result), result


def _own_objects_only(_w: World, role: str, result: Any) -> None:
    tenant = _tenant_of_role(role) or "acme"
    assert all(oid.startswith(f"/tenants/{tenant}") for oid in result), result


def _keys_of(tenant: str) -> Check:
    def check(_w: World, _role: str, result: Any) -> None:
        assert {k["tenant_id"] for k in result} <= {tenant}, result
    return check


def _shares_of(tenant: str) -> Check:
    def check(_w: World, _role: str, result: Any) -> None:
        for share in result:
            assert tenant in (share["source_tenant"], share["target_tenant"]), share
    return check


def _is(value: Any) -> Check:
    def check(_w: World, _role: str, result: Any) -> None:
        assert result == value, f"expected {value!r}, got {result!r}"
    return check


def _brief_survives(w: World, _role: str, _result: Any) -> None:
    assert w.exists(BRIEF), "acme's shared brief was deleted through beta's alias path"


def _stored_in_acme(w: World, _role: str, result: Any) -> None:
    assert str(result).startswith("acme:"), result


# -- parameter builders -------------------------------------------------------------------

def _self_grant(w: World, role: str) -> dict[str, Any]:
    """Grant yourself owner of acme's root (the admin grants a harmless placeholder)."""
    return {"subject": ["user", w.user_of(role)], "relation": "owner",
            "object": ["file", "/tenants/acme"]}


def _swapped(prefix: str, public_id: str) -> str:
    return f"{prefix}:{public_id.partition(':')[2]}"


def _fields(w: World, path: str, **extra: Any) -> dict[str, Any]:
    _tid, user = w.grant(path)
    return {"subject": ["user", user], "relation": "can_read", "object": ["file", path],
            **extra}


def v(group: str, variant: str, build: Builder, allow: frozenset[str],
      **options: Any) -> Case:
    return Case(group, variant, build, allow, **options)


#: Where a write may land, and who may write there: the variants of every method that
#: decides as ``write`` does (``write_many``, a signed PUT).
WRITE_TARGETS: list[tuple[str, Callable[[World, str], str], frozenset[str]]] = [
    ("shared new", lambda w, r: w.path(SHARED), WRITERS),
    ("private", lambda w, r: w.file(PRIVATE), ADMINS),
    ("outbox (read-shared to beta)", lambda w, r: w.file(OUTBOX), ADMINS),
    ("beta alias path -> acme outbox", lambda w, r: f"{ALIAS_DIR}/outbox/{w.name('n')}",
     ADMINS),
    ("beta", lambda w, r: w.file(BETA_SHARED), BETA),
    ("acme alias -> suspended gamma", lambda w, r: f"{GAMMA_ALIAS}.{w.name('n')}", ADMIN),
]


def _files() -> list[Case]:
    data = _b64(b"bola")
    cases = [
        # mkdir
        v("mkdir", "shared", lambda w, r: {"path": w.path(SHARED)}, WRITERS),
        v("mkdir", "private", lambda w, r: {"path": w.path(PRIVATE)}, ADMINS),
        v("mkdir", "outbox (read-shared to beta)", lambda w, r: {"path": w.path(OUTBOX)},
          ADMINS),
        v("mkdir", "tenant root exist_ok", lambda w, r: {"path": "/tenants/acme"}, ADMINS),
        v("mkdir", "beta", lambda w, r: {"path": w.path(BETA_SHARED)}, BETA),
        # rmdir
        v("rmdir", "shared", lambda w, r: {"path": w.tree(SHARED), "recursive": True},
          WRITERS),
        v("rmdir", "private", lambda w, r: {"path": w.tree(PRIVATE), "recursive": True},
          ADMINS),
        v("rmdir", "outbox", lambda w, r: {"path": w.tree(OUTBOX), "recursive": True},
          ADMINS),
        v("rmdir", "beta", lambda w, r: {"path": w.tree(BETA_SHARED), "recursive": True},
          BETA),
        # rmdir does not follow aliases: beta's own (absent) path; acme's outbox stays.
        v("rmdir", "beta alias dir of acme's outbox", lambda w, r: {
            "path": f"{ALIAS_DIR}/outbox", "recursive": True}, NOBODY,
          status={A: 404, X: 404}, verify=_brief_survives),
        # Removing /tenants/acme deletes the tenant (files, grants, keys, users, record):
        # what delete_tenant reserves for the system administrator.
        v("rmdir", "tenant root (deletes the tenant)",
          lambda w, r: {"path": "/tenants/acme", "recursive": True}, ADMIN,
          destructive=True),
    ]
    for method in ("write", "append"):
        cases += [
            v(method, "shared new", lambda w, r: {"path": w.path(SHARED), "data": data},
              WRITERS),
            v(method, "shared existing", lambda w, r: {"path": w.file(SHARED), "data": data},
              WRITERS),
            v(method, "private", lambda w, r: {"path": w.file(PRIVATE), "data": data},
              ADMINS),
            v(method, "outbox (read-shared to beta)",
              lambda w, r: {"path": w.file(OUTBOX), "data": data}, ADMINS),
            v(method, "beta alias path -> acme outbox",
              lambda w, r: {"path": f"{ALIAS_DIR}/outbox/{w.name('n')}", "data": data},
              ADMINS),
            v(method, "beta alias of acme's existing brief",
              lambda w, r: {"path": ALIAS_BRIEF, "data": data}, ADMINS, destructive=True),
            v(method, "beta", lambda w, r: {"path": w.file(BETA_SHARED), "data": data},
              BETA),
            # Inside acme's shared folder, but an alias of suspended gamma's share.
            v(method, "acme alias -> suspended gamma",
              lambda w, r: {"path": f"{GAMMA_ALIAS}.{w.name('n')}", "data": data}, ADMIN),
        ]
    # write_many refuses the whole call for any path its caller may not write: each
    # variant of write, as a batch of one and as one intruder among allowed files.
    for variant, build, allow in WRITE_TARGETS:
        cases.append(v("write_many", variant,
                       lambda w, r, build=build: {"files": {build(w, r): data}}, allow))
    cases += [
        v("write_many", "acme private among acme shared", lambda w, r: {"files": {
            w.path(SHARED): data, w.file(PRIVATE): data}}, ADMINS),
        v("write_many", "acme .tenant.json", lambda w, r: {"files": {DOCUMENT: data}},
          NOBODY, status={A: 400, T: 400}),
        v("write", "acme .tenant.json", lambda w, r: {
            "path": DOCUMENT, "data": _b64(json.dumps({"name": "Acme"}).encode())}, ADMIN,
          destructive=True),
        v("append", "acme .tenant.json", lambda w, r: {"path": DOCUMENT, "data": data},
          NOBODY, status={A: 400, T: 400}),
    ]
    reads: list[tuple[str, Builder, frozenset[str], dict[str, int]]] = [
        ("shared file", lambda w, r: {"path": DOC}, MEMBERS, {}),
        ("private file", lambda w, r: {"path": SECRET}, ADMINS, {}),
        ("outbox file (shared to beta)", lambda w, r: {"path": BRIEF}, ADMINS | {X}, {}),
        ("beta alias path -> acme outbox", lambda w, r: {"path": ALIAS_BRIEF},
         ADMINS | {X}, {}),
        ("missing in shared", lambda w, r: {"path": w.path(SHARED)}, NOBODY,
         dict.fromkeys(MEMBERS, 404)),
        ("missing in private", lambda w, r: {"path": w.path(PRIVATE)}, NOBODY,
         dict.fromkeys(ADMINS, 404)),
        ("acme .tenant.json", lambda w, r: {"path": DOCUMENT}, ADMINS, {}),
        ("beta file", lambda w, r: {"path": BETA_DOC}, BETA, {}),
        ("gamma file shared to acme (gamma suspended)", lambda w, r: {"path": GAMMA_DOC},
         ADMIN, {}),
        ("acme alias -> suspended gamma", lambda w, r: {"path": GAMMA_ALIAS}, ADMIN, {}),
    ]
    for variant, build, allow, status in reads:
        cases.append(v("read", variant, build, allow, status=status))
        # A signed GET is signed only by who may read the file now.
        cases.append(v("sign_url", f"GET {variant}",
                       lambda w, r, build=build: {**build(w, r), "method": "GET"},
                       allow, status=status))
    # A signed PUT is signed only by who may write the path now (as write decides).
    for variant, build, allow in WRITE_TARGETS:
        cases.append(v("sign_url", f"PUT {variant}", lambda w, r, build=build: {
            "path": build(w, r), "method": "PUT"}, allow))
    cases += [
        # Parameters the method does not take are refused before anything is decided —
        # a tenant_id cannot redirect a file call, a principal cannot be injected.
        v("read", "extra tenant_id=beta", lambda w, r: {"path": DOC, "tenant_id": "beta"},
          NOBODY, status=dict.fromkeys(WORKING, 400)),
        v("read", "injected admin principal", lambda w, r: {
            "path": SECRET, "principal": {"user_id": "root", "tenant_id": None,
                                          "is_admin": True}},
          NOBODY, status=dict.fromkeys(WORKING, 400)),
    ]
    stats = [*reads,
             ("shared dir", lambda w, r: {"path": SHARED}, MEMBERS, {}),
             ("tenant root", lambda w, r: {"path": "/tenants/acme"}, ADMINS, {}),
             ("beta alias dir", lambda w, r: {"path": ALIAS_DIR}, BETA, {}),
             # Members of acme see where suspended gamma's share would appear …
             ("acme alias dir of suspended gamma",
              lambda w, r: {"path": "/tenants/acme/shared/from-gamma"}, MEMBERS, {}),
             ("/tenants", lambda w, r: {"path": "/tenants"}, ADMIN, {})]
    for variant, build, allow, status in stats:
        cases.append(v("stat", variant, build, allow, status=status))
        if status:  # exists answers False where stat says 404
            cases.append(v("exists", variant, build, frozenset(status), noop=True,
                           check=_is(False)))
        else:
            cases.append(v("exists", variant, build, allow, check=_is(True)))
    # The key is checked before the body is read, so only a caller with a key learns
    # that the method streams.
    cases.append(v("open_read", "shared file (streams: GET /api/fs/content)",
                   lambda w, r: {"path": DOC}, NOBODY,
                   status={role: 400 for role in AUTHENTICATED}))
    cases += [
        v("list", "shared", lambda w, r: {"path": SHARED}, MEMBERS,
          check=_entries_within(SHARED)),
        v("list", "private", lambda w, r: {"path": PRIVATE}, ADMINS),
        v("list", "outbox (shared to beta)", lambda w, r: {"path": OUTBOX}, ADMINS | {X},
          check=_entries_within(OUTBOX)),
        v("list", "tenant root", lambda w, r: {"path": "/tenants/acme"}, ADMINS),
        v("list", "tenant root recursive",
          lambda w, r: {"path": "/tenants/acme", "recursive": True}, ADMINS,
          check=_entries_within("/tenants/acme")),
        v("list", "shared with a cursor naming beta", lambda w, r: {
            "path": SHARED, "recursive": True,
            "cursor": base64.urlsafe_b64encode(json.dumps(["beta", ""]).encode())
            .decode().rstrip("=")}, MEMBERS, check=_entries_within(SHARED)),
        v("list", "beta alias dir", lambda w, r: {"path": ALIAS_DIR}, BETA,
          check=_entries_within(ALIAS_DIR)),
        # … but nothing in it while gamma is suspended.
        v("list", "acme alias dir of suspended gamma",
          lambda w, r: {"path": "/tenants/acme/shared/from-gamma"}, MEMBERS,
          check=_no_entries_but_for_admin),
        # list does not resolve an alias below the alias directory: beta's own, absent path.
        v("list", "beta alias subdir", lambda w, r: {"path": f"{ALIAS_DIR}/outbox"}, NOBODY,
          status={A: 404, X: 404}),
        v("list", "missing in shared", lambda w, r: {"path": w.path(SHARED)}, NOBODY,
          status=dict.fromkeys(MEMBERS, 404)),
        v("list", "beta", lambda w, r: {"path": BETA_SHARED}, BETA),
        v("list", "/tenants", lambda w, r: {"path": "/tenants"}, ADMIN),
        v("list", "/ recursive", lambda w, r: {"path": "/", "recursive": True}, ADMIN),
        # delete
        v("delete", "shared", lambda w, r: {"path": w.file(SHARED)}, WRITERS),
        v("delete", "private", lambda w, r: {"path": w.file(PRIVATE)}, ADMINS),
        v("delete", "outbox", lambda w, r: {"path": w.file(OUTBOX)}, ADMINS),
        v("delete", "missing in shared", lambda w, r: {"path": w.path(SHARED)}, NOBODY,
          status=dict.fromkeys(WRITERS, 404)),
        # delete does not follow aliases: beta's own (absent) path, acme's file untouched.
        v("delete", "beta alias path of acme's brief", lambda w, r: {"path": ALIAS_BRIEF},
          NOBODY, status={A: 404, X: 404}, verify=_brief_survives),
        v("delete", "acme .tenant.json", lambda w, r: {"path": DOCUMENT}, NOBODY,
          status={A: 400, T: 400}),
        v("delete", "beta", lambda w, r: {"path": w.file(BETA_SHARED)}, BETA),
    ]
    moves: list[tuple[str, Builder, frozenset[str]]] = [
        ("shared -> shared", lambda w, r: {"src": w.file(SHARED), "dst": w.path(SHARED)},
         WRITERS),
        ("shared -> private", lambda w, r: {"src": w.file(SHARED), "dst": w.path(PRIVATE)},
         ADMINS),
        ("private -> shared", lambda w, r: {"src": w.file(PRIVATE), "dst": w.path(SHARED)},
         ADMINS),
        ("acme -> beta", lambda w, r: {"src": w.file(SHARED), "dst": w.path(BETA_SHARED)},
         ADMIN),
        ("beta -> acme", lambda w, r: {"src": w.file(BETA_SHARED), "dst": w.path(SHARED)},
         ADMIN),
    ]
    for variant, build, allow in moves:
        cases.append(v("rename", variant, build, allow))
        cases.append(v("copy", variant, build, allow))
    cases += [
        v("rename", "outbox -> beta", lambda w, r: {"src": w.file(OUTBOX),
                                                     "dst": w.path(BETA_SHARED)}, ADMIN),
        # The share lets beta read the brief, and beta writes its own tenant: allowed.
        v("copy", "outbox (shared) -> beta", lambda w, r: {"src": BRIEF,
                                                            "dst": w.path(BETA_SHARED)},
          BETA),
        v("copy", "private -> beta", lambda w, r: {"src": SECRET,
                                                    "dst": w.path(BETA_SHARED)}, ADMIN),
    ]
    return cases


def _rebac() -> list[Case]:
    def grant(path: str, **extra: Any) -> Builder:
        return lambda w, r: {"subject": ["user", w.name("u")], "relation": "can_read",
                             "object": ["file", w.file(path)], **extra}

    check = {"subject": ["user", "carol"], "permission": "can_read", "object": ["file", DOC]}
    check_beta = {"subject": ["user", "dave"], "permission": "can_read",
                  "object": ["file", BETA_DOC]}
    model = default_model_text()
    cases = [
        v("rebac_create", "acme file", grant(SHARED), ADMINS, check=_stored_in_acme),
        v("rebac_create", "acme file, tenant_id=acme", grant(SHARED, tenant_id="acme"),
          ADMINS, check=_stored_in_acme),
        v("rebac_create", "acme file, tenant_id=beta", grant(SHARED, tenant_id="beta"),
          ADMIN, check=_stored_in_acme),
        v("rebac_create", "beta file, tenant_id=acme", grant(BETA_SHARED, tenant_id="acme"),
          ADMIN),
        v("rebac_create", "beta file", grant(BETA_SHARED), BETA),
        v("rebac_create", "self-grant owner of acme root", _self_grant, ADMINS,
          destructive=True),
        v("rebac_create", "grant to beta's user", lambda w, r: {
            "subject": ["user", "beta/dave"], "relation": "can_read",
            "object": ["file", w.file(SHARED)]}, ADMIN),
        v("rebac_create", "grant to tenant beta", lambda w, r: {
            "subject": ["tenant", "beta"], "relation": "can_read",
            "object": ["file", w.file(SHARED)]}, ADMIN),
        v("rebac_create", "acme file parent -> beta file", lambda w, r: {
            "subject": ["file", BETA_DOC], "relation": "parent",
            "object": ["file", w.file(SHARED)]}, ADMIN),
        v("rebac_create", "acme group member", lambda w, r: {
            "subject": ["user", w.name("u")], "relation": "member",
            "object": ["group", "eng"], "tenant_id": "acme"}, ADMINS, check=_stored_in_acme),
        # A non-file object naming beta is stored in the caller's tenant (acme), never
        # in beta's store.
        v("rebac_create", "object tenant:beta (stored in acme)", lambda w, r: {
            "subject": ["user", w.name("u")], "relation": "member",
            "object": ["tenant", "beta"], "tenant_id": "acme"}, ADMINS,
          check=_stored_in_acme),
        # rebac_delete
        v("rebac_delete", "acme tuple id", lambda w, r: {"tuple_id": w.grant(SHARED)[0]},
          ADMINS),
        v("rebac_delete", "acme tuple id relabelled beta:", lambda w, r: {
            "tuple_id": _swapped("beta", w.grant(SHARED)[0])}, BETA, noop=True,
          check=_is(False)),
        v("rebac_delete", "beta tuple id relabelled acme:", lambda w, r: {
            "tuple_id": _swapped("acme", w.grant(BETA_SHARED)[0])}, MEMBERS, noop=True,
          check=_is(False)),
        v("rebac_delete", "beta tuple id", lambda w, r: {"tuple_id": w.grant(BETA_SHARED)[0]},
          BETA),
        v("rebac_delete", "acme editor grant", lambda w, r: {
            "tuple_id": w.tuple_ids["editor"]}, ADMINS, destructive=True),
        v("rebac_delete", "acme fields", lambda w, r: _fields(w, w.file(SHARED)), ADMINS),
        v("rebac_delete", "acme fields, tenant_id=beta", lambda w, r: _fields(
            w, w.file(SHARED), tenant_id="beta"), ADMIN),
        v("rebac_delete", "beta fields, tenant_id=acme", lambda w, r: _fields(
            w, w.file(BETA_SHARED), tenant_id="acme"), ADMIN),
        # queries
        v("rebac_check", "acme object", lambda w, r: dict(check), MEMBERS, check=_is(True)),
        v("rebac_check", "acme object, tenant_id=beta", lambda w, r: {
            **check, "tenant_id": "beta"}, ADMIN),
        v("rebac_check", "beta object, tenant_id=acme", lambda w, r: {
            **check_beta, "tenant_id": "acme"}, ADMIN),
        v("rebac_check", "beta object", lambda w, r: dict(check_beta), BETA),
        v("rebac_check_batch", "acme objects", lambda w, r: {"checks": [
            [check["subject"], "can_read", check["object"]],
            [["user", "alice"], "owner", ["file", SECRET]]]}, MEMBERS, check=_is([True, True])),
        v("rebac_check_batch", "acme + beta objects", lambda w, r: {"checks": [
            [check["subject"], "can_read", check["object"]],
            [check_beta["subject"], "can_read", check_beta["object"]]]}, ADMIN),
        v("rebac_check_batch", "beta objects, tenant_id=acme", lambda w, r: {
            "checks": [[check_beta["subject"], "can_read", check_beta["object"]]],
            "tenant_id": "acme"}, ADMIN),
        v("rebac_expand", "acme object", lambda w, r: {"permission": "can_read",
                                                       "object": ["file", SECRET]}, MEMBERS),
        v("rebac_expand", "acme object, tenant_id=beta", lambda w, r: {
            "permission": "can_read", "object": ["file", SECRET], "tenant_id": "beta"}, ADMIN),
        v("rebac_expand", "beta object", lambda w, r: {"permission": "can_read",
                                                       "object": ["file", BETA_DOC]}, BETA),
        v("rebac_list_tuples", "tenant_id=acme", lambda w, r: {"tenant_id": "acme"},
          MEMBERS, check=_acme_tuples_only),
        v("rebac_list_tuples", "acme object", lambda w, r: {"object": ["file", SHARED]},
          MEMBERS, check=_acme_tuples_only),
        v("rebac_list_tuples", "acme object, tenant_id=beta", lambda w, r: {
            "object": ["file", SHARED], "tenant_id": "beta"}, ADMIN),
        v("rebac_list_tuples", "tenant_id=beta", lambda w, r: {"tenant_id": "beta"}, BETA),
        v("rebac_list_tuples", "unscoped (own tenant only)", lambda w, r: {}, EVERYONE,
          check=_own_tuples_only),
        v("rebac_list_objects", "tenant_id=acme", lambda w, r: {
            "subject": ["user", "carol"], "permission": "can_read", "object_type": "file",
            "tenant_id": "acme"}, MEMBERS, check=_own_objects_only),
        v("rebac_list_objects", "tenant_id=beta", lambda w, r: {
            "subject": ["user", "dave"], "permission": "can_read", "object_type": "file",
            "tenant_id": "beta"}, BETA),
        v("rebac_list_objects", "unscoped (own tenant only)", lambda w, r: {
            "subject": ["user", "carol"], "permission": "can_read", "object_type": "file"},
          EVERYONE - ADMIN, status={A: 400}, check=_own_objects_only),
        v("rebac_list_subjects", "acme object", lambda w, r: {
            "object": ["file", SECRET], "permission": "can_read"}, MEMBERS),
        v("rebac_list_subjects", "acme object, tenant_id=beta", lambda w, r: {
            "object": ["file", SECRET], "permission": "can_read", "tenant_id": "beta"}, ADMIN),
        v("rebac_list_subjects", "beta object", lambda w, r: {
            "object": ["file", BETA_DOC], "permission": "can_read"}, BETA),
        v("rebac_revision", "tenant_id=acme", lambda w, r: {"tenant_id": "acme"}, MEMBERS),
        v("rebac_revision", "tenant_id=beta", lambda w, r: {"tenant_id": "beta"}, BETA),
        v("rebac_read_model", "tenant_id=acme", lambda w, r: {"tenant_id": "acme"}, MEMBERS),
        v("rebac_read_model", "tenant_id=beta", lambda w, r: {"tenant_id": "beta"}, BETA),
        # Writing the default model changes no answer, so the cell can be allowed safely.
        v("rebac_write_model", "tenant_id=acme", lambda w, r: {
            "model": model, "tenant_id": "acme"}, ADMINS, destructive=True),
        v("rebac_write_model", "tenant_id=beta", lambda w, r: {
            "model": model, "tenant_id": "beta"}, BETA, destructive=True),
    ]
    return cases


def _keys() -> list[Case]:
    return [
        v("admin_create_key", "acme new user", lambda w, r: {
            "user_id": w.name("u"), "name": "bola", "tenant_id": "acme"}, ADMINS),
        v("admin_create_key", "acme existing user bob", lambda w, r: {
            "user_id": "bob", "name": "bola", "tenant_id": "acme"}, ADMINS),
        v("admin_create_key", "beta user", lambda w, r: {
            "user_id": w.name("u"), "name": "bola", "tenant_id": "beta"}, BETA),
        v("admin_create_key", "system admin key", lambda w, r: {
            "user_id": w.name("root"), "name": "bola", "is_admin": True}, ADMIN),
        v("admin_create_key", "admin key inside acme", lambda w, r: {
            "user_id": w.name("u"), "name": "bola", "tenant_id": "acme", "is_admin": True},
          NOBODY, status={A: 400}),
        v("admin_list_keys", "tenant_id=acme", lambda w, r: {"tenant_id": "acme"}, ADMINS,
          check=_keys_of("acme")),
        v("admin_list_keys", "tenant_id=beta", lambda w, r: {"tenant_id": "beta"}, BETA,
          check=_keys_of("beta")),
        v("admin_list_keys", "all tenants", lambda w, r: {}, ADMIN),
        # "_system" is no tenant id (admin keys are listed unscoped): invalid for all.
        v("admin_list_keys", "tenant_id=_system", lambda w, r: {"tenant_id": "_system"},
          NOBODY, status=dict.fromkeys(EVERYONE, 400)),
        v("admin_get_key", "acme key", lambda w, r: {"key_id": w.key_ids["editor"]}, ADMINS),
        v("admin_get_key", "beta key", lambda w, r: {"key_id": w.key_ids["other_tenant"]},
          BETA),
        v("admin_get_key", "system admin key", lambda w, r: {"key_id": w.key_ids["admin"]},
          ADMIN),
        v("admin_get_key", "missing key", lambda w, r: {"key_id": "000000000000"}, NOBODY,
          status={A: 404}),
        v("admin_update_key", "acme key", lambda w, r: {"key_id": w.key("acme"),
                                                        "name": "renamed"}, ADMIN),
        v("admin_update_key", "system admin key", lambda w, r: {"key_id": w.key(None),
                                                                "name": "renamed"}, ADMIN),
        v("admin_revoke_key", "acme key", lambda w, r: {"key_id": w.key("acme")}, ADMINS),
        v("admin_revoke_key", "beta key", lambda w, r: {"key_id": w.key("beta")}, BETA),
        v("admin_revoke_key", "system admin key", lambda w, r: {"key_id": w.key(None)},
          ADMIN),
        v("admin_revoke_key", "missing key", lambda w, r: {"key_id": "000000000000"},
          NOBODY, status={A: 404}),
    ]


def _tenants() -> list[Case]:
    acme = {"tenant_id": "acme"}
    beta = {"tenant_id": "beta"}
    cases = [
        v("create_tenant", "new tenant", lambda w, r: {"tenant_id": w.name("new")}, ADMIN),
        v("create_tenant", "acme again", lambda w, r: dict(acme), NOBODY, status={A: 409}),
        v("get_tenant", "acme", lambda w, r: dict(acme), ADMINS),
        v("get_tenant", "beta", lambda w, r: dict(beta), BETA),
        v("get_tenant", "missing", lambda w, r: {"tenant_id": "nosuch"}, NOBODY,
          status={A: 404}),
        v("list_tenants", "all", lambda w, r: {}, ADMIN),
        v("list_tenants", "injected admin principal", lambda w, r: {
            "principal": {"user_id": "root", "tenant_id": None, "is_admin": True}}, NOBODY,
          status=dict.fromkeys(WORKING, 400)),
        v("update_tenant", "acme name", lambda w, r: {**acme, "name": "Acme"}, ADMIN,
          destructive=True),
        v("update_tenant", "acme plan", lambda w, r: {**acme, "plan": "enterprise"}, ADMIN,
          destructive=True),
        v("get_usage", "acme", lambda w, r: dict(acme), ADMINS),
        v("get_usage", "beta", lambda w, r: dict(beta), BETA),
        v("billing_preview", "acme", lambda w, r: dict(acme), ADMINS),
        v("billing_preview", "beta", lambda w, r: dict(beta), BETA),
        v("tenant_health_metrics", "fleet", lambda w, r: {}, ADMIN),
        v("suspend_tenant", "acme", lambda w, r: dict(acme), ADMIN, destructive=True),
        v("reactivate_tenant", "acme", lambda w, r: dict(acme), ADMIN),
        v("upgrade_tenant", "acme", lambda w, r: {**acme, "plan": "enterprise"}, ADMIN,
          destructive=True),
        v("cancel_tenant", "acme", lambda w, r: dict(acme), ADMIN, destructive=True),
        v("delete_tenant", "acme confirmed", lambda w, r: {**acme, "confirm": True}, ADMIN,
          destructive=True),
        v("delete_tenant", "acme dry run", lambda w, r: dict(acme), NOBODY,
          status={A: 412}),
        # audit
        v("audit_query", "acme", lambda w, r: dict(acme), ADMINS),
        v("audit_query", "beta", lambda w, r: dict(beta), BETA),
        # "_system" is not a tenant id for anyone but the system administrator: the
        # others get invalid_argument, which names nothing.
        v("audit_query", "system log", lambda w, r: {"tenant_id": "_system"}, ADMIN,
          status=dict.fromkeys(EVERYONE - ADMIN, 400)),
        v("audit_verify", "acme", lambda w, r: dict(acme), ADMINS),
        v("audit_verify", "beta", lambda w, r: dict(beta), BETA),
        v("audit_export", "acme", lambda w, r: dict(acme), ADMINS),
        v("audit_export", "beta", lambda w, r: dict(beta), BETA),
        # export / import
        v("export_tenant", "acme", lambda w, r: {
            **acme, "path": f"/exports/{w.name('acme')}.tar.gz"}, ADMIN),
        v("export_tenant", "acme, default path", lambda w, r: dict(acme), ADMIN),
        v("import_tenant", "acme export as a new tenant", lambda w, r: {
            "archive": EXPORT, "tenant_id": w.name("imported")}, ADMIN),
        # shares
        v("create_share", "acme file -> beta", lambda w, r: {
            "path": w.file(SHARED), "target_tenant_id": "beta"}, ADMINS),
        v("create_share", "acme outbox -> beta again", lambda w, r: {
            "path": OUTBOX, "target_tenant_id": "beta"}, ADMINS, destructive=True),
        v("create_share", "beta file -> acme", lambda w, r: {
            "path": w.file(BETA_SHARED), "target_tenant_id": "acme"}, BETA),
        v("create_share", "acme private -> beta (can_write)", lambda w, r: {
            "path": w.file(PRIVATE), "target_tenant_id": "beta", "permission": "can_write"},
          ADMINS),
        v("list_shares", "acme outgoing", lambda w, r: dict(acme), ADMINS,
          check=_shares_of("acme")),
        v("list_shares", "acme incoming", lambda w, r: {**acme, "direction": "incoming"},
          ADMINS, check=_shares_of("acme")),
        v("list_shares", "beta incoming", lambda w, r: {**beta, "direction": "incoming"},
          BETA, check=_shares_of("beta")),
        v("revoke_share", "acme share", lambda w, r: {"share_id": w.share()}, ADMINS),
        v("revoke_share", "beta share", lambda w, r: {
            "share_id": w.share(BETA_SHARED, "acme")}, BETA),
        v("revoke_share", "acme share relabelled beta:", lambda w, r: {
            "share_id": _swapped("beta", w.share())}, NOBODY, status={A: 404, X: 404}),
        v("revoke_share", "missing acme share", lambda w, r: {
            "share_id": "acme:" + "0" * 32}, NOBODY, status={A: 404, T: 404}),
    ]
    return cases


def _rpc_cases() -> dict[str, list[Case]]:
    table: dict[str, list[Case]] = {}
    for case in _files() + _rebac() + _keys() + _tenants():
        table.setdefault(case.group, []).append(case)
    return table


def _route_cases() -> dict[str, list[Case]]:
    get, put, post = ("GET /api/fs/content", "PUT /api/fs/content", "POST /api/fs/content")
    cases = [
        v(get, "shared file", lambda w, r: {"path": DOC}, MEMBERS),
        v(get, "private file", lambda w, r: {"path": SECRET}, ADMINS),
        v(get, "private file, Range", lambda w, r: {"path": SECRET, "_range": "bytes=0-3"},
          ADMINS),
        v(get, "outbox file (shared to beta)", lambda w, r: {"path": BRIEF}, ADMINS | {X}),
        v(get, "beta alias path -> acme outbox", lambda w, r: {"path": ALIAS_BRIEF},
          ADMINS | {X}),
        v(get, "missing in shared", lambda w, r: {"path": w.path(SHARED)}, NOBODY,
          status=dict.fromkeys(MEMBERS, 404)),
        v(get, "missing in private", lambda w, r: {"path": w.path(PRIVATE)}, NOBODY,
          status=dict.fromkeys(ADMINS, 404)),
        v(get, "acme .tenant.json", lambda w, r: {"path": DOCUMENT}, ADMINS),
        v(get, "beta file", lambda w, r: {"path": BETA_DOC}, BETA),
        v(get, "gamma file shared to acme (gamma suspended)", lambda w, r: {"path": GAMMA_DOC},
          ADMIN),
        v(get, "acme alias -> suspended gamma", lambda w, r: {"path": GAMMA_ALIAS}, ADMIN),
    ]
    for group in (put, post):
        cases += [
            v(group, "shared new", lambda w, r: {"path": w.path(SHARED)}, WRITERS),
            v(group, "shared existing", lambda w, r: {"path": w.file(SHARED)}, WRITERS),
            v(group, "private", lambda w, r: {"path": w.file(PRIVATE)}, ADMINS),
            v(group, "outbox (read-shared to beta)", lambda w, r: {"path": w.file(OUTBOX)},
              ADMINS),
            v(group, "beta alias path -> acme outbox",
              lambda w, r: {"path": f"{ALIAS_DIR}/outbox/{w.name('n')}"}, ADMINS),
            v(group, "beta", lambda w, r: {"path": w.file(BETA_SHARED)}, BETA),
            v(group, "acme alias -> suspended gamma",
              lambda w, r: {"path": f"{GAMMA_ALIAS}.{w.name('n')}"}, ADMIN),
        ]
    cases += [
        v(put, "acme .tenant.json", lambda w, r: {
            "path": DOCUMENT, "_body": json.dumps({"name": "Acme"}).encode()}, ADMIN,
          destructive=True),
        v("GET /metrics", "fleet metrics", lambda w, r: {}, ADMIN),
        # The RPC route with names outside the registry: nothing else is reachable.
        *(v("POST /api/nfs/{method}", f"not a method: {name}", lambda w, r, n=name: {
            "_method": n}, NOBODY, status=dict.fromkeys(WORKING, 400))
          for name in ("files.delete_tenant", "_drop_tenant", "delete_tenant_", "admit",
                       "close", "__init__")),
        v("GET /health", "liveness (public)", lambda w, r: {}, NOBODY, fixed=200),
        v("GET /openapi.json", "schema (public)", lambda w, r: {}, NOBODY, fixed=200),
        v("HEAD /openapi.json", "schema (public)", lambda w, r: {}, NOBODY, fixed=200),
    ]
    table: dict[str, list[Case]] = {}
    for case in cases:
        table.setdefault(case.group, []).append(case)
    return table


RPC_CASES = _rpc_cases()
ROUTE_CASES = _route_cases()

#: Cells that fail today: (group, variant, role) → why. Each stays a strict xfail until
#: the engine is fixed (then the xfail turns into an XPASS failure: delete the entry).
#: Empty: the revoke_share existence oracle this matrix found is fixed in
#: ``ShareService.revoke_share`` (it decides before it looks).
HOLES: dict[tuple[str, str, str], str] = {}
