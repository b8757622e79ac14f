"""Hostile tenant archives: every byte of an import passes the live API's validation.

Each archive is built by hand with ``tarfile``. Every refusal must raise a specific error
class with a message naming the problem, write nothing at all (every row of every table
and every blob byte on disk are compared before and after), and leave ``fsck`` clean.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import nexus
from nexus.authz import default_model_text
from nexus.service import NexusService
from nexus.service import transfer as transfer_module
from nexus.store.schema import metadata
from nexus.types import Principal

ADMIN = Principal.local_admin()
MIB = 1024 * 1024
Member = tuple[str, bytes | None]  # (name, content); None is a directory


# -- building archives -------------------------------------------------------------------


def entries_for(files: dict[str, bytes | None]) -> list[dict[str, Any]]:
    return [{"path": p, "type": "directory", "size": 0, "sha256": None} if d is None else
            {"path": p, "type": "file", "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for p, d in files.items()]


def metadata_members(*, tenant_id: str = "imp", entries: list[Any] | None = None,
                     files: dict[str, bytes | None] | None = None, record: Any = None,
                     users: Any = (), tuples: Any = (), shares: Any = (),
                     raw: dict[str, bytes] | None = None) -> list[Member]:
    manifest = {"format": "nexus-tenant-export/1", "tenant_id": tenant_id,
                "files": entries_for(files or {}) if entries is None else entries}
    docs = {"manifest.json": manifest, "tenant.json": record or {"name": "Imported"},
            "users.json": list(users), "tuples.json": list(tuples),
            "shares.json": list(shares), "audit.json": []}
    out = {name: json.dumps(doc).encode() for name, doc in docs.items()}
    out.update(raw or {})
    return list(out.items())


def pack(members: Iterable[Member | tarfile.TarInfo]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for item in members:
            if isinstance(item, tarfile.TarInfo):
                tar.addfile(item)
                continue
            name, data = item
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def archive(files: dict[str, bytes | None] | None = None, *, model: str | None = None,
            **meta: Any) -> bytes:
    files = files or {}
    members: list[Any] = metadata_members(files=files, **meta)
    if model is not None:
        members.append(("model.fga", model.encode()))
    members += [(f"files/{p}", d) for p, d in files.items()]
    return pack(members)


# -- what "nothing written" means ------------------------------------------------------------


@pytest.fixture(autouse=True)
def fsck_clean(service: NexusService) -> Any:
    """Whatever a test imported or refused, the deployment is consistent afterwards."""
    yield
    report = service.maintenance.fsck(deep=True)
    assert report.ok, report.problems


def snapshot(service: NexusService) -> dict[str, Any]:
    """Every row of every table, and every blob file on disk (with staging)."""
    state: dict[str, Any] = {}
    with service.db.read() as conn:
        for table in metadata.sorted_tables:
            state[table.name] = sorted(map(repr, conn.execute(select(table))))
    state["blobs"] = blob_files(service)
    return state


def blob_files(service: NexusService) -> list[tuple[str, int]]:
    root = service.settings.data_dir / "blobs"
    return sorted((str(p.relative_to(root)), p.stat().st_size)
                  for p in root.rglob("*") if p.is_file() and p.name != ".deployment")


def blob_bytes(service: NexusService, tenant: str) -> int:
    root = service.settings.data_dir / "blobs"
    return sum(p.stat().st_size for d in (root / tenant, root / ".staging") if d.exists()
               for p in d.rglob("*") if p.is_file())


def refused(service: NexusService, data: bytes, error: type[Exception],
            *fragments: str, tenant_id: str | None = None) -> str:
    """Import ``data``; it must fail with ``error`` mentioning every fragment and change
    nothing: every row and every blob byte as before (and fsck is checked clean at the end
    of every test). Returns the message."""
    before = snapshot(service)
    with pytest.raises(error) as caught:
        service.transfer.import_tenant(ADMIN, data, tenant_id=tenant_id)
    message = str(caught.value)
    assert type(caught.value) is error, (type(caught.value), message)
    assert all(f in message for f in fragments), message
    assert snapshot(service) == before, f"a refused import wrote something: {message}"
    return message


def imported(service: NexusService, data: bytes, tenant_id: str | None = None) -> dict:
    result = service.transfer.import_tenant(ADMIN, data, tenant_id=tenant_id)
    report = service.maintenance.fsck()
    assert report.ok, report.problems
    return result


def usage(service: NexusService, tenant: str) -> dict[str, Any]:
    return service.tenants.get_usage(ADMIN, tenant)["usage"]


# -- paths -------------------------------------------------------------------------------


PATHS = [
    ("../escape", "'..' segment"),
    ("shared/../../../other/x", "'..' segment"),
    ("/etc/passwd", "empty segment"),
    ("a\x00b", "NUL"),
    ("a//b", "empty segment"),
    ("a/./b", "'.' segment"),
    ("a/", "not a canonical path"),
    ("x\u2024\u2024/y", "imitates"),
    ("e\u0301", "not a canonical path"),  # not NFC: two spellings of one name
    (".tenant.json", "live record"),
]


def test_traversal_and_non_canonical_paths(service: NexusService) -> None:
    for path, fragment in PATHS:
        refused(service, archive({path: b"x"}), nexus.InvalidArgumentError,
                f"archive member {('files/' + path)!r}", fragment)


def test_members_must_be_exactly_the_manifest(service: NexusService) -> None:
    listed = {"a.txt": b"A"}
    unlisted = [
        metadata_members(files=listed) + [("files/a.txt", b"A"), ("files/b.txt", b"B")],
        metadata_members(files=listed) + [("/files/a.txt", b"A")],
        metadata_members(files=listed) + [("files/../a.txt", b"A")],
        metadata_members(files=listed) + [("files/./a.txt", b"A")],
        metadata_members(files=listed) + [("files/a.txt", b"A"), ("files/a.txt", b"A")],
        metadata_members(files=listed) + [("files/A.txt", b"A")],
    ]
    for members in unlisted:
        refused(service, pack(members), nexus.InvalidArgumentError, "not listed in the manifest")
    refused(service, pack(metadata_members(files=listed) + [("notes.txt", b"A")]),
            nexus.InvalidArgumentError, "not listed in the manifest")
    # Listed but absent; listed as a directory but a file; a link.
    refused(service, pack(metadata_members(files=listed)), nexus.InvalidArgumentError,
            "missing 1 entries of its manifest, e.g. files/a.txt")
    refused(service, pack(metadata_members(files={"d": None}) + [("files/d", b"")]),
            nexus.InvalidArgumentError, "listed as a directory")
    link = tarfile.TarInfo("files/a.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/tenants/other/secret"
    refused(service, pack([*metadata_members(files=listed), link]),
            nexus.InvalidArgumentError, "is not a file or a directory")
    # A file under a file; metadata out of order.
    refused(service, archive({"a": b"1", "a/b": b"2"}), nexus.InvalidArgumentError,
            "its parent files/a is a file")
    members = metadata_members()
    refused(service, pack([members[1], members[0], *members[2:]]),
            nexus.InvalidArgumentError, "expected manifest.json next")
    refused(service, b"not a tarball", nexus.InvalidArgumentError, "not a readable")


def test_alias_paths_are_written_below_the_target_never_through_the_share(
        service: NexusService, monkeypatch: pytest.MonkeyPatch) -> None:
    service.tenants.create_tenant(ADMIN, "victim")
    secret = "/tenants/victim/docs/secret.txt"
    service.files.write(ADMIN, secret, b"the victim's")
    alias = "/tenants/imp/shared/from-victim/docs/secret.txt"
    # While the import runs, victim shares /docs into imp (the alias resolves into the
    # victim's tenant, as the ordinary write path would see it) ...
    aliases = service.files._aliases
    live = aliases.resolve
    monkeypatch.setattr(aliases, "resolve", lambda path: path.replace(
        "/tenants/imp/shared/from-victim", "/tenants/victim") if "from-victim" in path
        else live(path))
    assert aliases.resolve(alias) == secret
    victim_before = victim_rows(service)
    hostile = {"shared/from-victim/docs/secret.txt": b"overwritten!"}
    refused(service, archive(hostile, entries=[{**entries_for(hostile)[0], "sha256": None}]),
            nexus.InvalidArgumentError, "files/shared/from-victim/docs/secret.txt")
    result = imported(service, archive(hostile))
    assert result["files"] == 1
    assert service.files.read(ADMIN, secret) == b"the victim's"
    assert victim_rows(service) == victim_before
    assert blob_bytes(service, "victim") == len(b"the victim's")
    stored = {p.name for p in (service.settings.data_dir / "blobs" / "imp").rglob("*")
              if p.is_file()}
    assert stored == {hashlib.sha256(b"overwritten!").hexdigest()}
    # ... and once it really shares, the imported row is a real entry of imp, which wins
    # over the alias; the alias itself is live.
    monkeypatch.undo()
    service.shares.create_share(ADMIN, "/tenants/victim/docs", "imp", "can_write")
    assert aliases.resolve(alias) == alias
    assert aliases.resolve(alias.replace("secret", "other")) == \
        "/tenants/victim/docs/other.txt"
    assert service.files.read(ADMIN, alias) == b"overwritten!"
    assert service.files.read(ADMIN, secret) == b"the victim's"


files_table = metadata.tables["files"]


def victim_rows(service: NexusService) -> list[str]:
    with service.db.read() as conn:
        return sorted(map(repr, conn.execute(select(files_table).where(
            files_table.c.tenant_id == "victim"))))


# -- hashes and sizes ----------------------------------------------------------------------


def test_every_file_needs_its_size_and_hash(service: NexusService) -> None:
    data = b"payload"
    good = entries_for({"a.bin": data})[0]
    for sha in (None, "", "abc", good["sha256"].upper(), 12, ["x"]):
        refused(service, archive({"a.bin": data}, entries=[{**good, "sha256": sha}]),
                nexus.InvalidArgumentError, "'files/a.bin': the manifest must give its SHA-256")
    without = {k: v for k, v in good.items() if k != "sha256"}
    refused(service, archive({"a.bin": data}, entries=[without]),
            nexus.InvalidArgumentError, "SHA-256")
    wrong = hashlib.sha256(b"something else").hexdigest()
    refused(service, archive({"a.bin": data}, entries=[{**good, "sha256": wrong}]),
            nexus.InvalidArgumentError, "'files/a.bin': content does not match")
    for size, fragment in ((3, "has 7 bytes; the manifest says 3"),
                           (700, "has 7 bytes; the manifest says 700"),
                           ("7", "size must be a non-negative integer"),
                           (True, "size must be a non-negative integer"),
                           (-1, "size must be a non-negative integer"), (7.0, "size must")):
        refused(service, archive({"a.bin": data}, entries=[{**good, "size": size}]),
                nexus.InvalidArgumentError, fragment)
    refused(service, archive({"a.bin": data}, entries=[good, good]),
            nexus.InvalidArgumentError, "listed twice")
    refused(service, archive({"d": None}, entries=[{"path": "d", "type": "directory",
                                                    "size": 5, "sha256": None}]),
            nexus.InvalidArgumentError, "a directory has size 0")
    refused(service, archive({"a.bin": data}, entries=[{**good, "type": "symlink"}]),
            nexus.InvalidArgumentError, "type must be")
    # The good one goes in, counted exactly.
    imported(service, archive({"a.bin": data, "d": None}))
    assert service.files.read(ADMIN, "/tenants/imp/a.bin") == data
    assert usage(service, "imp")["files"] == 1
    assert usage(service, "imp")["storage_bytes"] == len(data)


# -- metadata: size, nesting, types ------------------------------------------------------


def _declared_only(name: str, size: int) -> bytes:
    """An archive whose ``name`` header declares ``size`` bytes it does not carry."""
    manifest = metadata_members()[0][1] or b""
    first = tarfile.TarInfo("manifest.json")
    first.size = len(manifest)
    raw = first.tobuf() + manifest + b"\0" * (-len(manifest) % 512)
    info = tarfile.TarInfo(name)
    info.size = size
    return gzip.compress(raw + info.tobuf() + b"\0" * 4096, compresslevel=1)


def test_oversized_and_nested_metadata_is_refused_in_bounded_memory(
        service: NexusService) -> None:
    huge = 17 * MIB
    real = pack(metadata_members(raw={"tuples.json": b" " * huge}))
    pax = tarfile.TarInfo("tenant.json")
    pax.pax_headers = {"comment": "x" * (2 * MIB)}
    pax_bomb = pack([*metadata_members()[:1], pax])
    deep = pack(metadata_members(raw={"tenant.json": b"[" * 200_000 + b"]" * 200_000}))
    nested: Any = {}
    for _ in range(40):
        nested = {"k": nested}
    deep_settings = archive(record={"settings": nested})
    cases = [(_declared_only("tenant.json", 1 << 40), "declares 1099511627776 bytes"),
             (real, f"declares {huge} bytes"),
             (pax_bomb, "extension header"),
             (deep, "tenant.json is nested too deeply"),
             (deep_settings, "nested more than 32 deep")]
    for data, fragment in cases:
        tracemalloc.start()
        try:
            refused(service, data, nexus.InvalidArgumentError, fragment)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 64 * MIB, (fragment, peak)


RECORDS = [
    ("tenant.json", {"name": ["x"]}, "tenant.json name must be a string"),
    ("tenant.json", {"name": "x" * 300}, "tenant.json name must be a string"),
    ("tenant.json", {"name": "a\u0000b"}, "tenant.json name must be a string"),
    ("tenant.json", {"limit_overrides": {"max_storage_gb": 1e300}},
     "max_storage_gb must be at most"),
    ("tenant.json", {"limit_overrides": {"max_users": 2**62}}, "max_users must be at most"),
    ("tenant.json", {"trial_ends_at": 10**30}, "does not fit 64 bits"),
    ("tenant.json", {"limit_overrides": "lots"}, "tenant.json limit_overrides must be an object"),
    ("tenant.json", {"limit_overrides": {"max_users": "10"}},
     "limit_overrides: max_users must be a non-negative number"),
    ("tenant.json", {"limit_overrides": {"max_users": -1}}, "max_users must be"),
    ("tenant.json", {"limit_overrides": {"max_bananas": 1}}, "unknown limits ['max_bananas']"),
    ("tenant.json", {"plan": "platinum"}, "tenant.json plan: unknown plan 'platinum'"),
    ("tenant.json", {"plan": ["free"]}, "tenant.json plan must be a string"),
    ("tenant.json", {"status": "bogus"}, "tenant.json status must be one of"),
    ("tenant.json", {"status": None}, "tenant.json status must be one of"),
    ("tenant.json", {"status_reason": 12}, "tenant.json status_reason must be a string"),
    ("tenant.json", {"settings": ["a"]}, "tenant.json settings must be an object"),
    ("tenant.json", {"extra": "x"}, "tenant.json extra must be an object"),
    ("tenant.json", {"trial_ends_at": "tomorrow"}, "tenant.json trial_ends_at: not a time"),
    ("tenant.json", {"trial_ends_at": True}, "tenant.json trial_ends_at must be a time"),
    ("tenant.json", [], "tenant.json must be a JSON object"),
    ("users.json", {"alice": 1}, "users.json must be a list"),
    ("users.json", ["alice"], "users.json[0] must be an object"),
    ("users.json", [{"user_id": 7}], "users.json[0]: user_id 7 must be"),
    ("users.json", [{"user_id": "beta/bob"}], "users.json[0]: user_id 'beta/bob' must be"),
    ("users.json", [{"user_id": "a", "created_at": "now"}], "users.json[0] created_at must"),
    ("tuples.json", {"t": 1}, "tuples.json must be a list"),
    ("tuples.json", [["file", "/tenants/imp", "owner", "user", "a"]],
     "tuples.json[0] must be an object"),
    ("tuples.json", [{"object_type": 1}], "tuples.json[0]: object_type must be a non-empty"),
    ("tuples.json", [{"object_type": "file", "object_id": "/tenants/imp", "relation": "owner",
                      "subject_type": "user", "subject_id": ["a"]}],
     "tuples.json[0]: subject_id must be a non-empty string"),
    ("tuples.json", [{"object_type": "file", "object_id": "/tenants/imp", "relation": "owner",
                      "subject_type": "user", "subject_id": "a", "subject_relation": 5}],
     "subject_relation must be a string"),
    ("tuples.json", [{"object_type": "file", "object_id": "/tenants/imp", "relation": "owner",
                      "subject_type": "user", "subject_id": "a", "expires_at": "soon"}],
     "tuples.json[0]: expires_at must be a number"),
    ("tuples.json", [{"object_type": "file", "object_id": "/tenants/imp", "relation": "rules",
                      "subject_type": "user", "subject_id": "a"}], "tuples.json[0]: "),
    ("tuples.json", [{"object_type": "file", "object_id": "/tenants/imp", "relation": "owner",
                      "subject_type": "robot", "subject_id": "a"}], "unknown subject type"),
    ("tuples.json", [{"object_type": "file", "object_id": "tenants/imp", "relation": "owner",
                      "subject_type": "user", "subject_id": "a"}], "must be absolute"),
    ("tuples.json", [{"object_type": "file", "object_id": "/tenants/imp", "relation": "owner",
                      "subject_type": "user", "subject_id": "a:b"}], "user_id 'a:b' must be"),
    ("tuples.json", [{"object_type": "file", "object_id": "/tenants/imp", "relation": "owner",
                      "subject_type": "user", "subject_id": "a", "created_by": {"x": 1}}],
     "created_by must be a string"),
    ("tuples.json", [{"object_type": "file", "object_id": "/tenants/imp", "relation": "owner",
                      "subject_type": "user", "subject_id": "a", "created_by": "x\u0000"}],
     "created_by must be a string"),
    ("shares.json", {"s": 1}, "shares.json must be a list"),
    ("shares.json", [{"source_tenant": "x", "target_tenant": "y"}], "shares.json[0] is not a"),
    ("manifest.json", [], "manifest.json must be a JSON object"),
    ("manifest.json", {"format": "nexus-tenant-export/1", "tenant_id": "../x", "files": []},
     "manifest.json tenant_id"),
    ("manifest.json", {"format": "tar", "tenant_id": "imp", "files": []},
     "unknown archive format"),
    ("manifest.json", {"format": "nexus-tenant-export/1", "tenant_id": "imp", "files": {}},
     "manifest.json files must be a list"),
]


def test_type_confused_records(service: NexusService) -> None:
    for member, doc, fragment in RECORDS:
        refused(service, archive(raw={member: json.dumps(doc).encode()}),
                nexus.InvalidArgumentError, fragment)


def test_unparseable_metadata(service: NexusService) -> None:
    for content, fragment in ((b"\xff\xfe", "tenant.json is not UTF-8"),
                              (b"{", "tenant.json is not valid JSON"),
                              (b'{"trial_ends_at": NaN}', "not valid JSON"),
                              (b'{"trial_ends_at": 1e999}', "not a finite number"),
                              (b'{"trial_ends_at": ' + b"9" * 5000 + b"}", "not valid JSON")):
        refused(service, archive(raw={"tenant.json": content}), nexus.InvalidArgumentError,
                fragment)
    refused(service, archive(model="model\n  schema 1.1\ntype user\n"),
            nexus.InvalidArgumentError, "the model must define file#parent")
    refused(service, archive(model="type"), nexus.InvalidArgumentError, "line 1")
    refused(service, pack([*metadata_members(), ("model.fga", b"\xff")]),
            nexus.InvalidArgumentError, "model.fga is not UTF-8")


# -- users and quotas ------------------------------------------------------------------------


def test_users_are_deduplicated_and_counted_against_max_users(service: NexusService) -> None:
    refused(service, archive(users=[{"user_id": f"u{i}"} for i in range(6)]),
            nexus.QuotaExceededError, "quota exceeded: users limit is 5")
    refused(service, archive(record={"limit_overrides": {"max_users": 2}},
                             users=[{"user_id": u} for u in "abc"]),
            nexus.QuotaExceededError, "users limit is 2")
    result = imported(service, archive(users=[{"user_id": "alice", "created_at": 1.0}] * 40))
    assert result["users"] == 1
    assert usage(service, "imp")["users"] == 1
    assert service.tenants.billing_preview(ADMIN, "imp")["overage"] == []


def test_content_bomb_against_a_small_quota(service: NexusService,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = {"limit_overrides": {"max_storage_gb": 1 / 1024}}  # 1 MiB
    bomb = {"bomb.bin": bytes(64 * MIB)}  # compresses to ~64 KiB
    data = archive(bomb, record=tiny)
    assert len(data) < MIB
    refused(service, data, nexus.QuotaExceededError, "quota exceeded: storage limit")
    assert blob_bytes(service, "imp") == 0
    refused(service, archive({f"f{i}": b"x" for i in range(3)},
                             record={"limit_overrides": {"max_files": 2}}),
            nexus.QuotaExceededError, "quota exceeded: files limit is 2")
    # Even past the early check, streaming stops at the quota, not at the member's end.
    monkeypatch.setattr(transfer_module, "_precheck_quota", lambda plan: None)
    consumed = 0
    store = service.transfer._blobs
    original = store._stage

    def counting(chunks: Any) -> Any:
        def counted() -> Any:
            nonlocal consumed
            for chunk in chunks:
                consumed += len(chunk)
                yield chunk
        return original(counted())

    monkeypatch.setattr(store, "_stage", counting)
    refused(service, data, nexus.QuotaExceededError, "quota exceeded: storage limit")
    assert consumed <= MIB
    assert blob_bytes(service, "imp") == 0


# -- tuples and shares ---------------------------------------------------------------------


def _t(obj: str, relation: str, subject: str, **extra: Any) -> dict[str, Any]:
    object_type, object_id = obj.split(":", 1)
    subject, _, subject_relation = subject.partition("#")
    subject_type, subject_id = subject.split(":", 1)
    return {"object_type": object_type, "object_id": object_id, "relation": relation,
            "subject_type": subject_type, "subject_id": subject_id,
            "subject_relation": subject_relation or None, **extra}


def _share(target: str, path: str, tuple_id: str, permission: str = "can_read") -> dict:
    return {"source_tenant": "imp", "share_id": "s-" + tuple_id, "target_tenant": target,
            "path": path, "permission": permission, "tuple_id": tuple_id,
            "created_at": 1.0, "expires_at": None, "revoked_at": None, "created_by": "admin"}


def test_tuples_aimed_at_other_tenants(service: NexusService) -> None:
    service.tenants.create_tenant(ADMIN, "other")
    service.files.write(ADMIN, "/tenants/other/x.txt", b"other's")
    files = {"a.txt": b"mine"}
    hostile = [
        (_t("file:/tenants/other/x.txt", "owner", "user:alice"), "is not in tenant imp"),
        (_t("file:/tenants/other", "can_read", "tenant:imp#member"), "is not in tenant imp"),
        (_t("tenant:other", "member", "user:alice"), "object tenant:other is another tenant"),
        (_t("file:/tenants/imp/a.txt", "can_read", "user:other/bob"),
         "belongs to tenant other"),
        (_t("group:eng", "member", "user:other/bob"), "belongs to tenant other"),
        (_t("file:/tenants/imp/a.txt", "can_read", "tenant:other#member"),
         "belongs to tenant other"),
        (_t("file:/tenants/imp/a.txt", "owner", "file:/tenants/other/x.txt"),
         "is not in tenant imp"),
        (_t("file:/tenants/imp/a.txt", "can_read", "user:Other/bob"), "tenant id 'Other'"),
    ]
    for tuple_, fragment in hostile:
        refused(service, archive(files, tuples=[tuple_]), nexus.InvalidArgumentError,
                "tuples.json[0]: ", fragment)
    # A share record that does not match its tuple does not make it a share.
    grant = _t("file:/tenants/imp/a.txt", "can_read", "tenant:other#member", tuple_id="t1")
    for share in (_share("other", "/tenants/imp", "t1"), _share("third", "/tenants/imp/a.txt",
                                                                "t1"),
                  _share("other", "/tenants/imp/a.txt", "t1", "can_write"),
                  _share("other", "/tenants/imp/a.txt", "t2")):
        refused(service, archive(files, tuples=[grant], shares=[share]),
                nexus.InvalidArgumentError, "belongs to tenant other")
    # Importing it under the share's target would be a share with itself.
    refused(service, archive(files, tuples=[grant],
                             shares=[_share("other", "/tenants/imp/a.txt", "t1")]),
            nexus.InvalidArgumentError, "belongs to tenant other", tenant_id="other")
    # An outgoing share is re-created (to a tenant that exists), through a share record;
    # one to a tenant this server does not have is not.
    ghost = _t("file:/tenants/imp/a.txt", "can_write", "tenant:ghost#member", tuple_id="t9")
    result = imported(service, archive(
        files, tuples=[grant, ghost, _t("file:/tenants/imp", "owner", "user:alice")],
        shares=[_share("other", "/tenants/imp/a.txt", "t1"),
                _share("ghost", "/tenants/imp/a.txt", "t9", "can_write"),
                {**_share("imp", "/tenants/other/x.txt", "t5"), "source_tenant": "other",
                 "target_tenant": "imp"}]), tenant_id="mine")
    assert result["tuples"] == 2
    shares = service.shares.list_shares(ADMIN, "mine")
    assert [(s["target_tenant"], s["path"]) for s in shares] == [
        ("other", "/tenants/mine/a.txt")]
    assert service.shares.list_shares(ADMIN, "mine", direction="incoming") == []
    bob = Principal(user_id="bob", tenant_id="other")
    assert service.files.read(bob, "/tenants/mine/a.txt") == b"mine"
    with pytest.raises(nexus.NexusPermissionError):
        service.files.write(bob, "/tenants/mine/a.txt", b"no")
    assert service.files.read(ADMIN, "/tenants/other/x.txt") == b"other's"
    alice = Principal(user_id="alice", tenant_id="mine")
    with pytest.raises(nexus.NexusPermissionError):
        service.files.read(alice, "/tenants/other/x.txt")


# -- custom models -------------------------------------------------------------------------


REVIEWER_MODEL = default_model_text().replace(
    "    define can_read: [user, user:*, group#member, tenant#member] or viewer or can_read "
    "from parent",
    "    define reviewer: [user]\n"
    "    define can_read: [user, user:*, group#member, tenant#member] or viewer or reviewer "
    "or can_read from parent")


def test_custom_model_round_trip(service: NexusService) -> None:
    assert "reviewer" in REVIEWER_MODEL
    service.tenants.create_tenant(ADMIN, "acme")
    service.files.write(ADMIN, "/tenants/acme/docs/a.txt", b"draft")
    service.rebac.rebac_write_model(ADMIN, REVIEWER_MODEL, tenant_id="acme")
    service.rebac.rebac_create(ADMIN, ("user", "rita"), "reviewer",
                               ("file", "/tenants/acme/docs"))
    service.files.write(ADMIN, "/tenants/acme/shared/s.txt", b"for members")
    service.rebac.rebac_create(ADMIN, ("tenant", "acme"), "can_write",
                               ("file", "/tenants/acme/shared"))

    def answers(tenant: str) -> list[bool]:
        return [service.rebac.rebac_check(ADMIN, ("user", u), p,
                                          ("file", f"/tenants/{tenant}/docs/a.txt"))
                for u in ("rita", "bob") for p in ("can_read", "can_write", "reviewer")]

    before = answers("acme")
    assert before == [True, False, False, False, False, False]  # by the reviewer relation
    data = service.files.read(ADMIN, service.transfer.export_tenant(ADMIN, "acme")["path"])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(members["model.fga"]).read().decode() == REVIEWER_MODEL
        tuples = json.load(tar.extractfile(members["tuples.json"]))
    assert {(t["subject_type"], t["subject_id"]) for t in tuples} == {
        ("user", "rita"), ("tenant", "acme")}  # API-level names, no incarnation tokens
    result = imported(service, data, tenant_id="acme-copy")
    assert result["tuples"] == 2
    assert answers("acme-copy") == before
    member = Principal(user_id="carol", tenant_id="acme-copy")
    assert service.files.read(member, "/tenants/acme-copy/shared/s.txt") == b"for members"
    with pytest.raises(nexus.NexusPermissionError):
        service.files.read(member, "/tenants/acme-copy/docs/a.txt")
    rita = Principal(user_id="rita", tenant_id="acme-copy")
    assert service.files.read(rita, "/tenants/acme-copy/docs/a.txt") == b"draft"
    assert service.rebac.rebac_read_model(ADMIN, tenant_id="acme-copy")["model"] \
        == REVIEWER_MODEL
    assert usage(service, "acme-copy")["storage_bytes"] == len(b"draftfor members")
    # Without its model the tuples are refused; so is a model the server cannot enforce.
    stripped = _without(data, "model.fga")
    refused(service, stripped, nexus.InvalidArgumentError, "tuples.json[", tenant_id="acme-2")
    broken = _replaced(data, "model.fga",
                       REVIEWER_MODEL.replace("define owner:", "define boss:")
                       .replace("owner from parent", "boss from parent")
                       .replace(" or owner or", " or boss or").encode())
    refused(service, broken, nexus.InvalidArgumentError, "the model must define file#owner",
            tenant_id="acme-2")


def _members(data: bytes) -> list[Member]:
    out: list[Member] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            handle = tar.extractfile(m) if m.isfile() else None
            out.append((m.name, handle.read() if handle is not None else None))
    return out


def _without(data: bytes, name: str) -> bytes:
    return pack([m for m in _members(data) if m[0] != name])


def _replaced(data: bytes, name: str, content: bytes) -> bytes:
    return pack([(n, content if n == name else d) for n, d in _members(data)])


def test_round_trip_keeps_counters_exact(service: NexusService, tmp_path: Path) -> None:
    files = {"shared": None, "shared/a.txt": b"a" * 100, "deep/er/b.bin": bytes(range(256)),
             "users": b"a file where a standard folder would be"}
    result = imported(service, archive(files, users=[{"user_id": "u1"}],
                                       record={"name": "Imp", "plan": "pro",
                                               "status": "suspended",
                                               "status_reason": "moved",
                                               "extra": {"crm": "42"},
                                               "trial_ends_at": 2_000_000_000}))
    assert result == {"tenant_id": "imp", "files": 3, "users": 1, "tuples": 0}
    record = service.tenants.get_tenant(ADMIN, "imp")
    assert (record["name"], record["plan"], record["status"], record["crm"]) == (
        "Imp", "pro", "suspended", "42")
    assert record["usage"]["files"] == 3
    assert record["usage"]["storage_bytes"] == 100 + 256 + len(files["users"])
    assert service.files.stat(ADMIN, "/tenants/imp/deep/er").type == "directory"
    assert service.files.stat(ADMIN, "/tenants/imp/uploads").type == "directory"
    assert service.files.read(ADMIN, "/tenants/imp/users") == files["users"]
    events = service.audit.audit_query(ADMIN, "imp")["events"]
    assert [e["action"] for e in events] == ["tenant.import"]
    refused(service, archive(files), nexus.NexusFileExistsError, "already exists")
