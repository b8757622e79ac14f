"""What an import archive may say: its metadata members validated like live API input.

Pure functions (no storage): :func:`plan_import` turns ``manifest.json``, ``tenant.json``,
``users.json``, ``tuples.json``, ``shares.json`` and ``model.fga`` into an
:class:`ImportPlan` — canonical paths below the target tenant with sizes and SHA-256s, a
record checked by the validators of ``create_tenant``/``update_tenant``, deduplicated
user ids, and tuples checked against the archive's model, rebased to the target, with
objects in the tenant and subjects local (another tenant only through one of its
outgoing shares). Anything else raises :class:`InvalidArgumentError` naming the member.
:mod:`nexus.service.transfer` reads the archive and writes the plan.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nexus import paths
from nexus.authz import RelationTuple, default_model
from nexus.errors import InvalidArgumentError
from nexus.service.keys import validate_user_id
from nexus.service.rebac import parse_ref, parse_subject, validated_model
from nexus.service.tenants import TENANT_DOCUMENT
from nexus.tenancy import Limits, effective_limits
from nexus.tenancy.lifecycle import STATUSES
from nexus.tenancy.plans import plan_named, validate_overrides
from nexus.types import parse_timestamp

__all__ = ["FORMAT", "Entry", "Grant", "ImportPlan", "Share", "decode_text", "parse_json",
           "plan_import"]

FORMAT = "nexus-tenant-export/1"
_MAX_JSON_DEPTH = 32
_MAX_TEXT = 255  # name, status_reason, created_by: the columns' width
_MAX_LIMIT = 2**32  # users, files, GB: far above any plan, far below 64-bit overflow
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LOCAL_ID = re.compile(r"[A-Za-z0-9._@+=:-]{1,255}")


@dataclass(slots=True)
class Entry:
    """One manifest entry: ``path`` relative to the tenant root."""

    path: str
    kind: str
    size: int
    sha256: str | None

    @property
    def member(self) -> str:
        return f"files/{self.path}"


@dataclass(frozen=True, slots=True)
class Share:
    """An outgoing share of the archive's tenant (from ``shares.json``)."""

    target: str
    path: str
    permission: str
    created_by: str | None


@dataclass(frozen=True, slots=True)
class Grant:
    """A validated tuple of the archive, rebased to the target, with API-level ids."""

    tuple: RelationTuple
    created_by: str | None
    share: Share | None = None


@dataclass(slots=True)
class ImportPlan:
    """Everything an import will write, validated before any byte of content is stored."""

    tenant: str
    old_id: str
    record: dict[str, Any]
    entries: dict[str, Entry]
    users: dict[str, float | None]
    tuples: list[Grant]
    model: str | None
    limits: Limits
    digests: dict[str, str] = field(default_factory=dict)
    stored_bytes: int = 0


def plan_import(raw: dict[str, bytes], model_text: str | None, new_id: str | None,
                now: float) -> ImportPlan:
    """Validate the metadata members (``raw`` by name, ``model.fga`` as text if present)
    of an archive to be imported as ``new_id`` (default: the archive's own id)."""
    manifest = parse_json("manifest.json", raw["manifest.json"])
    if not isinstance(manifest, dict):
        raise InvalidArgumentError("manifest.json must be a JSON object")
    if manifest.get("format") != FORMAT:
        raise InvalidArgumentError(f"unknown archive format {manifest.get('format')!r}")
    old_id = _tenant_id(manifest.get("tenant_id"), "manifest.json tenant_id")
    tenant = new_id or old_id
    entries = _entries(manifest.get("files"), tenant)
    record = _tenant_record(parse_json("tenant.json", raw["tenant.json"]))
    users = _users(parse_json("users.json", raw["users.json"]))
    model = default_model() if model_text is None else validated_model(model_text)
    shares = _outgoing_shares(parse_json("shares.json", raw["shares.json"]), old_id)
    tuples = _tuples(parse_json("tuples.json", raw["tuples.json"]), model, old_id, tenant,
                     shares, now)
    return ImportPlan(tenant, old_id, record, entries, users, tuples, model_text,
                 effective_limits(record["plan"], record["limit_overrides"]))


def _entries(value: Any, tenant: str) -> dict[str, Entry]:
    if not isinstance(value, list):
        raise InvalidArgumentError("manifest.json files must be a list")
    root = paths.tenant_root(tenant)
    out: dict[str, Entry] = {}
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"manifest.json files[{index}] must be an object")
        rel = item.get("path")
        if not isinstance(rel, str) or not rel:
            raise InvalidArgumentError(f"manifest.json files[{index}]: path must be a "
                                       "non-empty string")
        where = f"archive member {('files/' + rel)[:200]!r}"
        try:
            full = paths.normalize(f"{root}/{rel}")
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{where}: {exc}") from None
        if full != f"{root}/{rel}" or paths.tenant_of(full) != tenant:
            raise InvalidArgumentError(f"{where}: not a canonical path below {root}")
        if rel == TENANT_DOCUMENT or rel.startswith(TENANT_DOCUMENT + "/"):
            raise InvalidArgumentError(f"{where}: {TENANT_DOCUMENT} is the tenant's live "
                                       "record, restored from tenant.json")
        kind, size, sha256 = item.get("type"), item.get("size"), item.get("sha256")
        if kind not in ("file", "directory"):
            raise InvalidArgumentError(f"{where}: type must be 'file' or 'directory'")
        if not _is_int(size) or size < 0:
            raise InvalidArgumentError(f"{where}: size must be a non-negative integer, "
                                       f"not {size!r}")
        if kind == "file" and (not isinstance(sha256, str) or not _SHA256.fullmatch(sha256)):
            raise InvalidArgumentError(
                f"{where}: the manifest must give its SHA-256 as 64 lowercase hex digits, "
                f"not {str(sha256)[:80]!r}")
        if kind == "directory" and (size != 0 or sha256 is not None):
            raise InvalidArgumentError(f"{where}: a directory has size 0 and no SHA-256")
        if rel in out:
            raise InvalidArgumentError(f"{where} is listed twice in the manifest")
        out[rel] = Entry(rel, kind, size, sha256 if kind == "file" else None)
    for rel in out:
        head = rel
        while "/" in head:
            head = head.rsplit("/", 1)[0]
            above = out.get(head)
            if above is not None and above.kind == "file":
                raise InvalidArgumentError(f"archive member 'files/{rel}': its parent "
                                           f"files/{head} is a file")
    return out


def _tenant_record(doc: Any) -> dict[str, Any]:
    """tenant.json through the checks of ``create_tenant`` / ``update_tenant``."""
    if not isinstance(doc, dict):
        raise InvalidArgumentError("tenant.json must be a JSON object")
    name = doc.get("name")
    if name is not None and (not _is_text(name) or not 0 < len(name) <= _MAX_TEXT):
        raise InvalidArgumentError(f"tenant.json name must be a string of 1-{_MAX_TEXT} "
                                   f"characters (no control characters), not {_shown(name)}")
    plan = doc.get("plan", "free")
    if not isinstance(plan, str):
        raise InvalidArgumentError(f"tenant.json plan must be a string, not {_shown(plan)}")
    _field("tenant.json plan", plan_named, plan)
    status = doc.get("status", "active")
    if not isinstance(status, str) or status not in STATUSES:
        raise InvalidArgumentError(f"tenant.json status must be one of {list(STATUSES)}, "
                                   f"not {_shown(status)}")
    reason = _optional_text(doc.get("status_reason"), "tenant.json status_reason")
    overrides = _object(doc.get("limit_overrides"), "tenant.json limit_overrides")
    clean = _field("tenant.json limit_overrides", validate_overrides, overrides)
    unknown = set(overrides) - set(clean)
    if unknown:
        raise InvalidArgumentError(f"tenant.json limit_overrides has unknown limits "
                                   f"{sorted(unknown)[:5]}")
    for key, limit in clean.items():
        if limit is not None and limit > _MAX_LIMIT:  # counters are 64-bit
            raise InvalidArgumentError(f"tenant.json limit_overrides: {key} must be at most "
                                       f"{_MAX_LIMIT}")
    trial_ends_at = doc.get("trial_ends_at")
    if isinstance(trial_ends_at, bool):
        raise InvalidArgumentError("tenant.json trial_ends_at must be a time")
    return {"name": name, "plan": plan, "status": status, "status_reason": reason,
            "limit_overrides": clean,
            "settings": _object(doc.get("settings"), "tenant.json settings"),
            "extra": _object(doc.get("extra"), "tenant.json extra"),
            "trial_ends_at": _field("tenant.json trial_ends_at", parse_timestamp,
                                    trial_ends_at)}


def _users(doc: Any) -> dict[str, float | None]:
    """users.json: valid user ids, each once (in archive order)."""
    if not isinstance(doc, list):
        raise InvalidArgumentError("users.json must be a list of {\"user_id\", "
                                   "\"created_at\"} objects")
    users: dict[str, float | None] = {}
    for index, item in enumerate(doc):
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"users.json[{index}] must be an object")
        try:
            user_id = validate_user_id(item.get("user_id"))
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"users.json[{index}]: {exc}") from None
        created = _optional_time(item.get("created_at"), f"users.json[{index}] created_at")
        users.setdefault(user_id, created)
    return users


def _outgoing_shares(doc: Any, old_id: str) -> dict[str, Share]:
    """Active shares out of the archive's tenant, by the id of the tuple they stand for.
    Shares into it are the other tenants' decisions and are not restored."""
    if not isinstance(doc, list):
        raise InvalidArgumentError("shares.json must be a list")
    out: dict[str, Share] = {}
    for index, item in enumerate(doc):
        where = f"shares.json[{index}]"
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"{where} must be an object")
        source = _tenant_id(item.get("source_tenant"), f"{where} source_tenant")
        target = _tenant_id(item.get("target_tenant"), f"{where} target_tenant")
        if old_id not in (source, target) or source == target:
            raise InvalidArgumentError(f"{where} is not a share out of or into {old_id}")
        if source != old_id or item.get("revoked_at") is not None:
            continue
        tuple_id, path, permission = (item.get(k) for k in ("tuple_id", "path", "permission"))
        if not all(isinstance(v, str) and v for v in (tuple_id, path, permission)):
            raise InvalidArgumentError(f"{where}: tuple_id, path and permission must be "
                                       "strings")
        _optional_time(item.get("expires_at"), f"{where} expires_at")
        out[tuple_id] = Share(target, path, permission,
                               _optional_text(item.get("created_by"), f"{where} created_by"))
    return out


def _tuples(doc: Any, model: Any, old_id: str, tenant: str, shares: dict[str, Share],
            now: float) -> list[Grant]:
    """tuples.json through the checks of ``rebac_create``, rebased to ``tenant``: objects
    in the tenant, subjects local — another tenant only as one of its shares."""
    if not isinstance(doc, list):
        raise InvalidArgumentError("tuples.json must be a list")
    out: dict[tuple[Any, ...], Grant] = {}
    for index, item in enumerate(doc):
        where = f"tuples.json[{index}]"
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"{where} must be an object")
        try:
            restored = _tuple(item, model, old_id, tenant, shares, now)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{where}: {exc}") from None
        if restored is not None:
            t = restored.tuple
            out.setdefault((t.object_type, t.object_id, t.relation, t.subject_type,
                            t.subject_id, t.subject_relation), restored)
    return list(out.values())


def _tuple(item: dict[str, Any], model: Any, old_id: str, tenant: str,
           shares: dict[str, Share], now: float) -> Grant | None:
    for key in ("object_type", "object_id", "relation", "subject_type", "subject_id"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise InvalidArgumentError(f"{key} must be a non-empty string")
    relation = item["relation"]
    expires_at = _optional_time(item.get("expires_at"), "expires_at")
    if expires_at is not None and expires_at <= now:
        return None  # expired since the export: it would grant nothing
    created_by = _optional_text(item.get("created_by"), "created_by")
    subject_relation = item.get("subject_relation")
    if subject_relation is not None and not isinstance(subject_relation, str):
        raise InvalidArgumentError("subject_relation must be a string or null")
    obj_type, obj_id, _ = parse_ref((item["object_type"], item["object_id"]), "object")
    obj_id = _local_object(obj_type, obj_id, old_id, tenant)
    subject = parse_subject((item["subject_type"], item["subject_id"],
                             subject_relation or None))
    subject, home = _subject(subject, old_id, tenant)
    share = None
    if home is not None:
        share = shares.get(item.get("tuple_id"))  # type: ignore[arg-type]
        if share is None or obj_type != "file" or share.target != home \
                or share.path != item["object_id"] or share.permission != relation \
                or home == tenant:
            raise InvalidArgumentError(
                f"subject {subject[0]}:{subject[1]} belongs to tenant {home}: another "
                "tenant may be named only by an outgoing share of this tenant (shares.json)")
        share = Share(home, obj_id, relation, share.created_by)
    model.validate_tuple(obj_type, relation, *subject)
    return Grant(RelationTuple(obj_type, obj_id, relation, subject[0], subject[1],
                                subject[2], expires_at), created_by, share)


def _local_object(obj_type: str, obj_id: str, old_id: str, tenant: str) -> str:
    """The object id in the target tenant; refused if the object is not the archive's."""
    if obj_type == "file":
        if paths.tenant_of(obj_id) != old_id:
            raise InvalidArgumentError(f"object file:{obj_id} is not in tenant {old_id}")
        return paths.tenant_root(tenant) + obj_id[len(paths.tenant_root(old_id)):]
    if obj_type == "tenant":
        if obj_id != old_id:
            raise InvalidArgumentError(f"object tenant:{obj_id} is another tenant")
        return tenant
    if "/" in obj_id or not _LOCAL_ID.fullmatch(obj_id):
        raise InvalidArgumentError(f"object {obj_type}:{obj_id} is not a local id")
    return obj_id


def _subject(subject: tuple[str, str, str | None], old_id: str,
             tenant: str) -> tuple[tuple[str, str, str | None], str | None]:
    """The subject in the target tenant, and the other tenant it belongs to (or None)."""
    type_, id_, relation = subject
    if type_ == "file":
        return (type_, _local_object("file", id_, old_id, tenant), relation), None
    if type_ == "tenant":
        if id_ == old_id:
            return (type_, tenant, relation), None
        return subject, _tenant_id(id_, "subject tenant")
    if id_ == "*":
        return subject, None
    if "/" in id_:
        home, _, local = id_.partition("/")
        _tenant_id(home, "subject tenant")
        if type_ == "user":
            validate_user_id(local)
        elif not _LOCAL_ID.fullmatch(local):
            raise InvalidArgumentError(f"subject id {id_!r} is not valid")
        return subject, home
    if type_ == "user":
        validate_user_id(id_)
    return subject, None



def parse_json(name: str, data: bytes) -> Any:
    """Parse a metadata member: UTF-8 JSON, finite numbers, nested at most 32 deep."""
    try:
        value = json.loads(decode_text(name, data), parse_constant=_no_constant,
                           parse_float=_finite, parse_int=_int64)
    except RecursionError:
        raise InvalidArgumentError(f"{name} is nested too deeply") from None
    except ValueError as exc:
        raise InvalidArgumentError(f"{name} is not valid JSON: {exc}") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise InvalidArgumentError(f"{name} is nested more than {_MAX_JSON_DEPTH} deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


def decode_text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"{name} is not UTF-8 text") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _int64(text: str) -> int:
    if len(text) > 20 or not -2**63 <= (value := int(text)) < 2**63:
        raise ValueError(f"{text[:40]} does not fit 64 bits")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def _field(what: str, validator: Callable[[Any], Any], value: Any) -> Any:
    """``validator(value)`` (one of the live API's), its refusal naming the field."""
    try:
        return validator(value)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {str(value)[:60]!r}"


def _tenant_id(value: Any, what: str) -> str:
    try:
        return paths.validate_tenant_id(value)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from None


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{what} must be an object, not {_shown(value)}")
    return value


def _optional_text(value: Any, what: str) -> str | None:
    if value is not None and (not _is_text(value) or len(value) > _MAX_TEXT):
        raise InvalidArgumentError(f"{what} must be a string of at most {_MAX_TEXT} "
                                   f"characters (no control characters) or null, not "
                                   f"{_shown(value)}")
    return value


def _is_text(value: Any) -> bool:
    """A string a text column can hold everywhere (PostgreSQL refuses NUL)."""
    return isinstance(value, str) and not any(ch < " " or ch == "\x7f" for ch in value)


def _optional_time(value: Any, what: str) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidArgumentError(f"{what} must be a number of Unix seconds or null, "
                                   f"not {_shown(value)}")
    return None if value is None else float(value)
