"""`nexus serve` as a real process on a real socket: Step 1 of the guide."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import nexus
from tests.serving import NEXUS, NexusProcess


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[NexusProcess]:
    srv = NexusProcess(tmp_path / "data", database_url)
    yield srv
    srv.stop()


def test_health_bootstrap_key_and_clean_shutdown(server: NexusProcess, tmp_path: Path,
                                                  database_url: str | None) -> None:
    health = httpx.get(server.url + "/health").json()
    assert health == {"status": "ok", "version": nexus.__version__, "mode": "multi-tenant"}
    key_file = tmp_path / "data" / "admin.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    admin = nexus.connect(config={"url": server.url, "api_key": key})
    admin.mkdir("/tenants/acme")
    assert [e["name"] for e in admin.list("/tenants")] == ["acme"]
    assert server.stop() == 0
    assert server.output().count(key) == 1  # printed once, at first start
    again = NexusProcess(tmp_path / "data", database_url)
    assert again.stop() == 0
    assert key not in again.output() and "shown once" not in again.output()


def test_port_in_use_is_a_clear_error(server: NexusProcess, tmp_path: Path) -> None:
    result = subprocess.run([*NEXUS, "serve", "--port", str(server.port), "--data-dir",
                             str(tmp_path / "other")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert httpx.get(server.url + "/health").status_code == 200  # the first one lives on


def test_guide_isolation_demo_over_the_network(server: NexusProcess, tmp_path: Path) -> None:
    key = (tmp_path / "data" / "admin.key").read_text().strip()
    admin = nexus.connect(config={"url": server.url, "api_key": key})
    keys = {}
    for tenant, user in (("acme", "alice"), ("beta", "bob")):
        admin.mkdir(f"/tenants/{tenant}")
        keys[user] = admin._call_rpc("admin_create_key", {
            "user_id": user, "name": user, "subject_type": "user", "tenant_id": tenant,
            "is_admin": False})["api_key"]
        admin.rebac_create(subject=("user", user), relation="owner",
                           object=("file", f"/tenants/{tenant}"), tenant_id=tenant)
    alice = nexus.connect(config={"url": server.url, "api_key": keys["alice"]})
    bob = nexus.connect(config={"url": server.url, "api_key": keys["bob"]})
    alice.write("/tenants/acme/shared/project-plan.md", b"CONFIDENTIAL - Acme")
    bob.write("/tenants/beta/shared/roadmap.md", b"CONFIDENTIAL - Beta")
    with pytest.raises(nexus.NexusPermissionError):
        bob.read("/tenants/acme/shared/project-plan.md")
    with pytest.raises(nexus.NexusPermissionError):
        alice.read("/tenants/beta/shared/roadmap.md")
    assert all(f["path"].startswith("/tenants/acme/")
               for f in alice.list("/tenants/acme", recursive=True))
    # No key, a garbage key: refused with the authentication class, never a 500.
    for bad in (None, "nx_000000000000_" + "A" * 43, "garbage"):
        client = nexus.connect(config={"url": server.url, "api_key": bad})
        with pytest.raises(nexus.AuthenticationError):
            client.read("/tenants/acme/shared/project-plan.md")


def test_cli_admin_create_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "NEXUS_DATA_DIR": str(data)}
    # A maintenance command never creates a deployment (tests/cli/test_deployment.py):
    # the embedded engine, like `nexus serve`, makes this one first.
    nexus.connect(config={"data_dir": str(data)}).close()
    made = subprocess.run([*NEXUS, "admin", "create-key", "--user", "ops", "--admin"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("nx_")
    client = nexus.connect(config={"data_dir": str(data), "api_key": key})
    client.mkdir("/tenants/acme")
    # The old spellings (--user-id, --tenant-id) are kept as aliases.
    refused = subprocess.run([*NEXUS, "admin", "create-key", "--user-id", "x",
                              "--tenant-id", "nope"], capture_output=True, text=True,
                             env=env, timeout=60)
    assert refused.returncode == 3 and "does not exist" in refused.stderr
