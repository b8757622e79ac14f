"""Export → import reproduces every file byte for byte and every permission answer."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

import nexus
from nexus.client import LocalTransport, NexusClient
from nexus.service import bootstrap
from nexus.settings import Settings
from nexus.types import Principal

FILES = {"shared/plan.md": b"# plan\n", "shared/deep/a/b/c.bin": bytes(range(256)) * 300,
         "users/alice/notes.md": b"private", "uploads/empty.txt": b""}


@pytest.fixture
def acme(admin: NexusClient) -> NexusClient:
    admin.create_tenant("acme", "Acme Corporation", plan="pro", max_users=7)
    for rel, data in FILES.items():
        admin.write(f"/tenants/acme/{rel}", data)
    admin._call_rpc("admin_create_key", {"user_id": "alice", "name": "a", "tenant_id": "acme"})
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.rebac_create(("user", "dan"), "can_read", ("file", "/tenants/acme/shared"))
    admin.rebac_create(("tenant", "acme"), "can_read", ("file", "/tenants/acme/uploads"))
    return admin


def _answers(client: NexusClient, tenant: str) -> list[bool]:
    checks = [(("user", u), p, ("file", f"/tenants/{tenant}/{rel}"))
              for u in ("alice", "dan", "eve") for p in ("can_read", "can_write", "owner")
              for rel in FILES]
    return client.rebac_check_batch(checks, tenant_id=tenant)


def test_export_archive_is_complete_and_safe(acme: NexusClient) -> None:
    result = acme.export_tenant("acme")
    assert result["path"].startswith("/exports/acme-") and result["path"].endswith(".tar.gz")
    assert result["files"] == len(FILES) and result["users"] == 1 and result["tuples"] == 3
    archive = b"".join(acme.read_stream(result["path"]))
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = tar.getnames()
        assert names[:6] == ["manifest.json", "tenant.json", "users.json", "tuples.json",
                             "shares.json", "audit.json"]
        assert json.load(tar.extractfile("audit.json"))  # the tenant's log travels along
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)
        manifest = json.load(tar.extractfile("manifest.json"))
        for entry in (e for e in manifest["files"] if e["type"] == "file"):
            data = tar.extractfile(f"files/{entry['path']}").read()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            assert data == FILES[entry["path"]]


def test_round_trip_to_a_second_server(acme: NexusClient, tmp_path: Path, backend: str,
                                       settings: Settings) -> None:
    before = _answers(acme, "acme")
    exported = acme.export_tenant("acme")
    archive = b"".join(acme.read_stream(exported["path"]))
    # A second deployment: its own data directory (and SQLite metadata).
    other = bootstrap(Settings(data_dir=tmp_path / "second"))
    try:
        second = NexusClient(LocalTransport(other, Principal.local_admin()))
        imported = second.import_tenant(archive)
        assert imported == {"tenant_id": "acme", "files": len(FILES), "users": 1,
                            "tuples": 3}
        for rel, data in FILES.items():
            assert second.read(f"/tenants/acme/{rel}") == data
        assert _answers(second, "acme") == before
        record = second.get_tenant("acme")
        assert record["plan"] == "pro" and record["limits"]["max_users"] == 7
        assert record["usage"]["files"] == len(FILES) and record["usage"]["users"] == 1
        assert other.maintenance.fsck().ok
        # The same archive under a new id, on the same server: paths and grants rebased.
        second.import_tenant(archive, tenant_id="acme-copy")
        assert second.read("/tenants/acme-copy/shared/plan.md") == FILES["shared/plan.md"]
        assert _answers(second, "acme-copy") == before
        with pytest.raises(nexus.NexusFileExistsError):
            second.import_tenant(archive)
    finally:
        other.close()


def test_hostile_archives_are_refused(admin: NexusClient) -> None:
    def archive(members: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    header = {"manifest.json": json.dumps({"format": "nexus-tenant-export/1",
                                           "tenant_id": "evil", "files": [
                                               {"path": "../../escape", "type": "file",
                                                "size": 1, "sha256": None}]}).encode(),
              "tenant.json": b"{}", "users.json": b"[]", "tuples.json": b"[]",
              "shares.json": b"[]", "audit.json": b"[]"}
    for bad in ({**header, "files/../../escape": b"x"}, {**header, "files//etc/passwd": b"x"},
                {"tenant.json": b"{}"}):
        with pytest.raises((nexus.InvalidArgumentError, nexus.ConflictError)):
            admin.import_tenant(archive(bad))
    with pytest.raises(nexus.InvalidArgumentError):
        admin.import_tenant(b"not a tarball")
    assert not admin.exists("/escape")
