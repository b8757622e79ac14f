"""Tenant incarnations: a tenant id is a name, an incarnation is one life of that name.

``create_tenant`` (and every other path that makes a tenant record, all through
:func:`nexus.store.TenantRepository.register`) mints a fresh random token. Every stored
reference to a tenant or to one of its principals names the *incarnation*, not the name:

==============================  ===============================================
what the API says               what a tuple stores
==============================  ===============================================
``tenant:beta``                 ``tenant:beta~<token>``
``tenant:beta#member``          ``tenant:beta~<token>#member``
``user:beta/bob`` (foreign)     ``user:beta~<token>/bob``
``user:bob`` (local)            ``user:bob`` (the store is the tenant's own and
                                goes with it)
==============================  ===============================================

API keys and share records carry the token too. A principal is checked as its
incarnation, so once ``beta`` is deleted nothing that named the old ``beta`` can match a
principal of a re-created ``beta``: the reference is dead by construction, before the
deletion's clean-up removes it. Clients can never name an incarnation themselves: the
tenant part of every subject they send must be a valid tenant id, and ``~`` is not
allowed in one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from nexus import paths
from nexus.errors import NexusFileNotFoundError

__all__ = ["SEPARATOR", "TokenOf", "decode_id", "decode_tuple", "encode_id", "encode_refs",
           "encode_subject", "memoised", "mint", "ref", "split"]

SEPARATOR = "~"
Ref = tuple[str, str, str | None]
#: The current incarnation token of a tenant id, ``None`` if no such tenant exists.
TokenOf = Callable[[str], "str | None"]


def mint() -> str:
    """A new incarnation token (64 random bits: never repeats in practice)."""
    return secrets.token_hex(8)


def ref(tenant_id: str, token: str) -> str:
    """The stored name of one incarnation: ``<tenant>~<token>``."""
    return f"{tenant_id}{SEPARATOR}{token}"


def split(stored: str) -> tuple[str, str] | None:
    """``(tenant, token)`` of an incarnation name, else ``None``."""
    tenant, sep, token = stored.partition(SEPARATOR)
    return (tenant, token) if sep and token else None


def _token(tenant_id: str, token_of: TokenOf) -> str:
    token = token_of(paths.validate_tenant_id(tenant_id))
    if token is None:
        raise NexusFileNotFoundError(
            f"no tenant {tenant_id!r}: grants name existing tenants only", tenant_id=tenant_id)
    return token


def encode_id(type_: str, id_: str, token_of: TokenOf) -> str:
    """The stored id of an API-level ``type:id`` (tenants and foreign users bound to the
    named tenant's current incarnation). Raises ``NexusFileNotFoundError`` for a tenant
    that does not exist and ``InvalidPathError`` for a malformed tenant part."""
    if type_ == "file" or id_ == "*":
        return id_
    if type_ == "tenant":
        return ref(id_, _token(id_, token_of))
    if "/" in id_:
        home, _, local = id_.partition("/")
        return f"{ref(home, _token(home, token_of))}/{local}"
    return id_


def decode_id(type_: str, stored: str, token_of: TokenOf) -> str | None:
    """The API-level id of a stored one; ``None`` if it names a dead incarnation."""
    if type_ == "file" or stored == "*":
        return stored
    head, slash, local = stored.partition("/")
    if type_ != "tenant" and not slash:
        return stored
    parsed = split(head)
    if parsed is None:
        return stored
    if token_of(parsed[0]) != parsed[1]:
        return None
    return parsed[0] + (slash + local if slash else "")


def encode_subject(subject: Ref, token_of: TokenOf) -> Ref:
    """:func:`encode_id` for a ``(type, id, relation)`` subject."""
    return subject[0], encode_id(subject[0], subject[1], token_of), subject[2]


def encode_refs(token_of: TokenOf, obj: Ref | None,
                subject: Ref | None) -> tuple[Ref | None, Ref | None] | None:
    """The stored forms of a query's object and subject (either may be absent); ``None``
    if one names a tenant that does not exist — a query that can match nothing."""
    try:
        return (None if obj is None else encode_subject(obj, token_of),
                None if subject is None else encode_subject(subject, token_of))
    except NexusFileNotFoundError:
        return None


def memoised(token_of: TokenOf) -> TokenOf:
    """``token_of`` asked at most once per tenant: for one request's many rows."""
    seen: dict[str, str | None] = {}

    def cached(tenant_id: str) -> str | None:
        if tenant_id not in seen:
            seen[tenant_id] = token_of(tenant_id)
        return seen[tenant_id]

    return cached


def decode_tuple(t: dict[str, Any], token_of: TokenOf) -> dict[str, Any] | None:
    """A stored tuple's dict (``object_type``/``object_id``/``subject_type``/
    ``subject_id`` keys) with API-level ids; ``None`` if it references a dead tenant."""
    subject = decode_id(t["subject_type"], t["subject_id"], token_of)
    obj = decode_id(t["object_type"], t["object_id"], token_of)
    if subject is None or obj is None:
        return None
    return {**t, "subject_id": subject, "object_id": obj}
