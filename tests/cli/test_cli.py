"""The ``nexus`` CLI as an operator uses it: a real ``nexus serve`` (SQLite, then
PostgreSQL) on a loopback port, every command run as its own ``python -m nexus.cli``
process."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nexus import __version__ as nexus_version_text
from tests.serving import NEXUS, NexusProcess, free_port

THROUGHPUT = re.compile(r"\d+(\.\d+)? [kMGT]?B/s")  # Rich's speed column: "52.3 MB/s"


@dataclass
class Live:
    url: str
    admin_key: str
    home: Path
    log: Path
    issued: list[str] = field(default_factory=list)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(tmp_path_factory: pytest.TempPathFactory,
         request: pytest.FixtureRequest) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("cli")
    database = None
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres_url").replace("postgresql+psycopg://",
                                                                   "postgresql://")
    server = NexusProcess(root / "data", database, log=root / "server.log")
    try:
        (root / "home").mkdir()
        yield Live(server.url, server.admin_key, root / "home", server.log_path)
    finally:
        server.stop()
        if database:
            from tests.conftest import _truncate_all

            _truncate_all(database)


def nexus(live: Live, *args: str, key: str | None = None, env: dict[str, str] | None = None,
          stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``nexus ARGS`` against the live server (admin key unless ``key``)."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("NEXUS_") and k != "XDG_CONFIG_HOME"}
    base.update(HOME=str(live.home), COLUMNS="200", NEXUS_URL=live.url,
                NEXUS_API_KEY=key or live.admin_key)
    return subprocess.run([*NEXUS, *args], capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})}, input=stdin, cwd=cwd)


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_tenant_key_put_ls_usage_export_import_delete(live: Live, tmp_path: Path) -> None:
    tenant = ok_json(nexus(live, "tenants", "create", "acme", "--name", "Acme Corp", "--json"))
    assert tenant["tenant_id"] == "acme" and tenant["plan"] == "free"
    created = ok_json(nexus(live, "keys", "create", "--user", "alice", "--tenant", "acme",
                            "--json"))
    assert created["api_key"].startswith("nx_") and created["tenant_id"] == "acme"
    live.issued.append(created["api_key"])
    listed = ok_json(nexus(live, "keys", "list", "--tenant", "acme", "--json"))
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert "api_key" not in listed[0]

    payload = os.urandom(3 * 1024 * 1024)
    (tmp_path / "report.bin").write_bytes(payload)
    put = nexus(live, "fs", "put", str(tmp_path / "report.bin"), "/tenants/acme/shared/",
                "--progress")
    assert put.returncode == 0, put.stderr
    assert "100%" in put.stderr and THROUGHPUT.search(put.stderr)  # the bar
    assert "/tenants/acme/shared/report.bin" in put.stdout  # the human table
    quiet = nexus(live, "fs", "put", str(tmp_path / "report.bin"),
                  "/tenants/acme/shared/copy.bin", "--json")
    assert not THROUGHPUT.search(quiet.stderr)  # no terminal, no --progress: no bar
    assert ok_json(quiet)["size"] == len(payload)

    entries = ok_json(nexus(live, "fs", "ls", "/tenants/acme/shared", "--json"))
    assert {e["name"]: e["size"] for e in entries} == {"report.bin": len(payload),
                                                       "copy.bin": len(payload)}
    table = nexus(live, "fs", "ls", "/tenants/acme/shared")
    assert table.returncode == 0 and "report.bin" in table.stdout and "3.1 MB" in table.stdout

    usage = ok_json(nexus(live, "tenants", "usage", "acme", "--json"))
    assert usage["usage"]["files"] == 2 and usage["usage"]["storage_bytes"] == 2 * len(payload)
    assert set(usage) >= {"limits", "utilization", "warnings"}
    assert "storage_gb" in nexus(live, "tenants", "usage", "acme").stdout
    bill = ok_json(nexus(live, "tenants", "bill", "acme", "--json"))
    assert bill["plan"] == "free" and bill["total"] == 0.0

    archive = tmp_path / "acme.tar.gz"
    export = nexus(live, "tenants", "export", "acme", "-o", str(archive), "--progress",
                   "--json")
    made = ok_json(export)
    assert THROUGHPUT.search(export.stderr)
    assert made["files"] == 2 and made["local"] == str(archive)
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == made["archive_sha256"]

    restored = ok_json(nexus(live, "tenants", "import", str(archive), "--as", "acme-copy",
                             "--progress", "--json"))
    assert restored["tenant_id"] == "acme-copy" and restored["files"] == 2
    got = nexus(live, "fs", "get", "/tenants/acme-copy/shared/report.bin",
                str(tmp_path / "back.bin"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "back.bin").read_bytes() == payload

    for victim in ("acme", "acme-copy"):
        gone = ok_json(nexus(live, "tenants", "delete", victim, "--yes", "--json"))
        assert gone["deleted"] is True
    missing = nexus(live, "tenants", "show", "acme")
    assert missing.returncode == 3 and "no tenant 'acme'" in missing.stderr


def test_exit_codes(live: Live, tmp_path: Path) -> None:
    for tenant in ("north", "south"):
        ok_json(nexus(live, "tenants", "create", tenant, "--json"))
    bob = ok_json(nexus(live, "keys", "create", "--user", "bob", "--tenant", "south",
                        "--json"))["api_key"]
    live.issued.append(bob)
    ok_json(nexus(live, "rebac", "grant", "user:bob", "owner", "file:/tenants/south",
                  "--json"))
    assert ok_json(nexus(live, "fs", "ls", "/tenants/south", "--json", key=bob))

    not_found = nexus(live, "fs", "cat", "/tenants/north/nothing.txt", "--json")
    assert not_found.returncode == 3
    assert json.loads(not_found.stderr)["error"]["code"] == "not_found"
    denied = nexus(live, "fs", "ls", "/tenants/north", key=bob)
    assert denied.returncode == 4 and "permission denied" in denied.stderr
    assert nexus(live, "tenants", "list", key=bob).returncode == 4  # not an administrator
    assert nexus(live, "fs", "ls", "/", key="nx_000000000000_" + "A" * 43).returncode == 4

    ok_json(nexus(live, "tenants", "create", "tiny", "--max-files", "1", "--json"))
    (tmp_path / "a.txt").write_bytes(b"a")
    assert nexus(live, "fs", "put", str(tmp_path / "a.txt"), "/tenants/tiny/").returncode == 0
    quota = nexus(live, "fs", "put", str(tmp_path / "a.txt"), "/tenants/tiny/b.txt")
    assert quota.returncode == 5 and "quota exceeded" in quota.stderr

    assert nexus(live, "fs", "ls", "--no-such-option").returncode == 2
    assert nexus(live, "tenants", "show").returncode == 2  # missing argument
    assert nexus(live, "rebac", "check", "alice", "can_read", "file:/x").returncode == 2
    unreachable = nexus(live, "fs", "ls", "/", env={"NEXUS_URL": f"http://127.0.0.1:"
                                                                  f"{free_port()}"})
    assert unreachable.returncode == 6 and "cannot reach" in unreachable.stderr


def test_destructive_commands_ask_unless_yes(live: Live) -> None:
    ok_json(nexus(live, "tenants", "create", "doomed", "--json"))
    refused = nexus(live, "tenants", "delete", "doomed", stdin="n\n")
    assert refused.returncode == 1
    assert "Delete tenant doomed with 0 files (0 bytes), 0 users" in refused.stderr
    assert ok_json(nexus(live, "tenants", "show", "doomed", "--json"))["status"] == "active"
    assert nexus(live, "tenants", "suspend", "doomed").returncode == 1  # no answer: no
    assert nexus(live, "tenants", "suspend", "doomed", stdin="y\n").returncode == 0
    shown = ok_json(nexus(live, "tenants", "reactivate", "doomed", "--json"))
    assert shown["status"] == "active"
    assert nexus(live, "tenants", "delete", "doomed", stdin="y\n").returncode == 0
    assert nexus(live, "tenants", "show", "doomed").returncode == 3


def test_shares_audit_and_rebac(live: Live) -> None:
    for tenant in ("src", "dst"):
        ok_json(nexus(live, "tenants", "create", tenant, "--json"))
    ok_json(nexus(live, "fs", "mkdir", "/tenants/src/shared/docs", "--json"))
    share = ok_json(nexus(live, "shares", "create", "/tenants/src/shared/docs", "--to", "dst",
                          "--json"))
    incoming = ok_json(nexus(live, "shares", "list", "dst", "--incoming", "--json"))
    assert [s["share_id"] for s in incoming] == [share["share_id"]]
    revoked = ok_json(nexus(live, "shares", "revoke", share["share_id"], "--yes", "--json"))
    assert revoked["status"] == "revoked"

    check = ok_json(nexus(live, "rebac", "check", "tenant:dst#member", "can_read",
                          "file:/tenants/src/shared/docs", "--json"))
    assert check["allowed"] is False
    tuple_id = ok_json(nexus(live, "rebac", "grant", "user:carol", "viewer",
                             "file:/tenants/src/shared", "--json"))["tuple_id"]
    assert nexus(live, "rebac", "check", "user:carol", "can_read",
                 "file:/tenants/src/shared/docs").stdout.strip() == "allowed"
    tuples = ok_json(nexus(live, "rebac", "tuples", "--tenant", "src", "--json"))
    assert tuple_id in {t["tuple_id"] for t in tuples}
    assert ok_json(nexus(live, "rebac", "revoke", tuple_id, "--json"))["deleted"] is True
    assert "type file" in nexus(live, "rebac", "model", "--tenant", "src").stdout

    events = ok_json(nexus(live, "audit", "query", "src", "--json"))["events"]
    assert {"tenant.create", "share.create"} <= {e["action"] for e in events}
    assert ok_json(nexus(live, "audit", "verify", "src", "--json"))["ok"] is True
    lines = nexus(live, "audit", "export", "src").stdout.splitlines()
    assert len(lines) >= len(events) and json.loads(lines[0])["action"] == "tenant.create"


def test_profiles_need_mode_0600(live: Live, tmp_path: Path) -> None:
    config = live.home / ".config" / "nexus" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[profiles.ops]\nurl = "{live.url}"\napi_key = "{live.admin_key}"\n')
    # The environment points at nothing: only the profile can make these work.
    dead = {"NEXUS_URL": f"http://127.0.0.1:{free_port()}", "NEXUS_API_KEY": "nx_bad"}
    config.chmod(0o644)
    refused = nexus(live, "tenants", "list", "--profile", "ops", env=dead)
    assert refused.returncode == 2
    assert "0644" in refused.stderr and "chmod 600" in refused.stderr
    config.chmod(0o600)
    assert "tenants" in ok_json(nexus(live, "tenants", "list", "--profile", "ops", "--json",
                                      env=dead))
    via_env = nexus(live, "tenants", "list", "--json", env={**dead, "NEXUS_PROFILE": "ops"})
    assert ok_json(via_env)["tenants"] is not None
    unknown = nexus(live, "tenants", "list", "--profile", "nope", env=dead)
    assert unknown.returncode == 2 and "no profile 'nope'" in unknown.stderr


def test_without_a_server_the_same_commands_run_in_process(live: Live, tmp_path: Path) -> None:
    local = {"NEXUS_URL": "", "NEXUS_API_KEY": "", "NEXUS_DATA_DIR": str(tmp_path / "data")}
    ok_json(nexus(live, "tenants", "create", "solo", "--json", env=local))
    entries = ok_json(nexus(live, "fs", "ls", "/tenants/solo", "--json", env=local))
    assert {e["name"] for e in entries} == {"users", "shared", "uploads", "exports"}
    nowhere = nexus(live, "fs", "ls", "/", env={**local, "NEXUS_DATA_DIR": ""})
    assert nowhere.returncode == 2 and "no server given" in nowhere.stderr


def test_help_reads_as_documentation(live: Live) -> None:
    top = nexus(live, "--help").stdout
    for group in ("fs", "tenants", "keys", "shares", "audit", "rebac"):
        assert group in top
    tenants = nexus(live, "tenants", "--help").stdout
    for command in ("create", "list", "show", "update", "suspend", "reactivate", "export",
                    "import", "delete", "usage", "bill"):
        assert command in tenants
    put = nexus(live, "fs", "put", "--help").stdout
    assert "--progress" in put and "NEXUS_URL" in put and "--profile" in put
    # A flag takes no value, so its help shows none ("--help <bool>" read as if it did).
    for text in (top, tenants, put, nexus(live, "serve", "--help").stdout):
        assert "<bool>" not in text
    version = nexus(live, "--version")
    assert version.returncode == 0 and version.stdout.strip() == nexus_version_text


def test_no_key_reaches_the_server_log(live: Live) -> None:
    assert len(live.issued) == 2  # the keys the tests above created through the CLI
    log = live.log.read_text()
    assert "nexus.access" in log  # the server did log every request
    assert log.count(live.admin_key) == 1  # printed once, by design, at the first start
    for key in live.issued:
        assert key not in log and key.split("_", 2)[2] not in log
