"""``nexus demo``: the multi-tenant SaaS guide, run for real against a real server.

The demo starts ``nexus serve`` on a free loopback port over a temporary data directory
(embedded SQLite, or an empty PostgreSQL database), reads the bootstrap administrator key
from ``<data-dir>/admin.key``, runs the guide's scripts from
``examples/multi_tenant_saas/`` in the guide's order as subprocesses (passing the server
URL and the keys each step creates through the environment), prints their output under
one heading per step, then checks every claim of the guide independently through the SDK
and prints a summary table. It always stops its server, and removes the temporary
directory unless ``keep`` is set.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.rule import Rule
from rich.table import Table
from rich.text import Text

import nexus
from nexus._serve import ServeProcess
from nexus.cli.render import console
from nexus.client import NexusClient
from nexus.errors import InvalidArgumentError, NexusFileNotFoundError

__all__ = ["STEPS", "Claim", "Step", "find_examples", "run_demo"]

#: Where the scripts are looked for first (a checkout's ``examples/multi_tenant_saas``).
EXAMPLES_ENV = "NEXUS_DEMO_EXAMPLES"
#: Tenants Step 2 creates and the production example re-creates: it runs with this suffix.
PRODUCTION_SUFFIX = "-prod"
_SHARED_FILE = "/tenants/acme/shared/partnership-proposal.pdf"
_STARTUP_USER = "sam"
_SCRIPT_TIMEOUT = 300.0
_START_TIMEOUT = 30.0
# Settings a parent shell may carry that must not leak into the demo's own server.
_SERVER_ENV = ("NEXUS_DATA_DIR", "NEXUS_DATABASE_URL", "NEXUS_BLOB_URL", "NEXUS_SECRET",
               "NEXUS_HOST", "NEXUS_PORT", "NEXUS_URL", "NEXUS_API_KEY")


@dataclass(frozen=True)
class Step:
    """One section of the guide and the script that is its code block."""

    label: str
    title: str
    script: str

    @property
    def heading(self) -> str:
        return f"{self.label}: {self.title}" if self.label.startswith("Step") else self.title


STEPS = (
    Step("Step 2", "Create Tenant Management System", "tenant_manager.py"),
    Step("Step 3", "Implement Tenant Isolation", "tenant_isolation_demo.py"),
    Step("Step 4", "Cross-Tenant Data Sharing (Controlled)", "cross_tenant_sharing.py"),
    Step("Step 5", "Implement Tenant Quotas and Billing", "tenant_quotas.py"),
    Step("Step 6", "Tenant Lifecycle Management", "tenant_lifecycle.py"),
    Step("Step 7", "Scaling to Thousands of Tenants", "scalable_saas.py"),
    Step("Production", "Complete Production Example", "production_saas.py"),
    Step("Troubleshooting", "Troubleshooting and Best Practices", "troubleshooting.py"),
)


@dataclass(frozen=True)
class Claim:
    """A checked claim: ``held`` is True, False, or None when it could not apply."""

    claim: str
    held: bool | None
    detail: str


class _NotApplicable(Exception):
    """The claim is about a capability this server does not have."""


# -- the server --------------------------------------------------------------------------


def _server(data_dir: Path, database_url: str | None, log_path: Path) -> ServeProcess:
    """``nexus serve`` as a child process, without the settings of the caller's shell."""
    return ServeProcess(data_dir, database_url, log_path=log_path, drop_env=_SERVER_ENV,
                        startup_seconds=_START_TIMEOUT)


# -- running the guide -------------------------------------------------------------------


def find_examples() -> Path:
    """The directory holding the guide's scripts: ``$NEXUS_DEMO_EXAMPLES``, the checkout
    this package runs from, or ``./examples/multi_tenant_saas``."""
    candidates = [Path(os.environ[EXAMPLES_ENV])] if os.environ.get(EXAMPLES_ENV) else []
    candidates += [Path(__file__).resolve().parents[3] / "examples" / "multi_tenant_saas",
                   Path.cwd() / "examples" / "multi_tenant_saas"]
    for candidate in candidates:
        if all((candidate / step.script).is_file() for step in STEPS):
            return candidate
    raise NexusFileNotFoundError(
        "cannot find the guide's scripts (examples/multi_tenant_saas); run from a checkout "
        f"of Nexus or set {EXAMPLES_ENV}")


@dataclass
class _Context:
    """What the steps hand on to each other and to the checks."""

    url: str
    admin_key: str
    keys_file: Path
    work_dir: Path
    keys: dict[str, str]
    #: ``{relative path: type}`` of tenant startup just before Step 6 deletes it.
    startup_tree: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV}
        env.update(NEXUS_URL=self.url, NEXUS_ADMIN_KEY=self.admin_key,
                   NEXUS_KEYS_FILE=str(self.keys_file), NEXUS_TENANT_SUFFIX=PRODUCTION_SUFFIX,
                   PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
        if "alice" in self.keys:
            env["ALICE_KEY"] = self.keys["alice"]
        if "bob" in self.keys:
            env["BOB_KEY"] = self.keys["bob"]
        return env

    def client(self, key: str) -> NexusClient:
        return nexus.connect(config={"url": self.url, "api_key": key})


def _note(message: str) -> None:
    console.print(Text(f"demo: {message}", style="dim"), soft_wrap=True)


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def _heading(title: str) -> None:
    console.print()
    console.print(Rule(Text(title, style="bold cyan"), align="left"))


def _indented(text: str, style: str = "") -> None:
    """Print a script's output as it is, two spaces in (no wrapping, no markup)."""
    body = "\n".join("  " + line if line else "" for line in text.rstrip("\n").split("\n"))
    console.print(Text(body, style=style), soft_wrap=True)


def _run_step(step: Step, examples: Path, ctx: _Context) -> Claim:
    _heading(f"{step.heading}  ({step.script})")
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, str(examples / step.script)], env=ctx.env(),
                                cwd=ctx.work_dir, capture_output=True, text=True,
                                encoding="utf-8", errors="replace", timeout=_SCRIPT_TIMEOUT,
                                stdin=subprocess.DEVNULL)
        code, out, err = result.returncode, result.stdout, result.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = None, _text(exc.stdout), _text(exc.stderr) + "\n(timed out)"
    seconds = time.monotonic() - started
    if out.strip():
        _indented(out)
    if err.strip():
        _indented(err, style="red")
    held = code == 0
    status = f"exit {code}" if code is not None else "timed out"
    console.print(Text(f"  {'✓' if held else '✗'} {step.script}: {status} in {seconds:.1f} s",
                       style="green" if held else "red"))
    return Claim(f"{step.label}: {step.script} runs", held, f"{status}, {seconds:.1f} s")


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _between_steps(done: Step, ctx: _Context, admin: NexusClient) -> None:
    """Hand what a step created on to the next ones."""
    if done.script == "tenant_manager.py" and ctx.keys_file.is_file():
        ctx.keys.update(json.loads(ctx.keys_file.read_text()))
        _note(f"read Alice's and Bob's keys from {ctx.keys_file.name}; "
              "Step 3 gets them as ALICE_KEY and BOB_KEY")
    if done.script == "tenant_isolation_demo.py":
        # The guide's script counts every entry, directories too, and prints the first five.
        for user, tenant in (("alice", "acme"), ("bob", "beta")):
            entries = admin.list(f"/tenants/{tenant}", recursive=True)
            files = sum(1 for e in entries if e["type"] == "file")
            _note(f"{user}'s {len(entries)} entries under /tenants/{tenant} are "
                  f"{_count(files, 'file')} and {_count(len(entries) - files, 'directory')}; "
                  "the script prints the first five")
    if done.script == "tenant_quotas.py":
        # Step 6 deletes "startup", which has no user in the guide; give it one, so the
        # check can show that the deleted tenant's key is refused.
        try:
            made = admin._call_rpc("admin_create_key", {
                "user_id": _STARTUP_USER, "name": "demo: startup user",
                "subject_type": "user", "tenant_id": "startup", "is_admin": False})
        except nexus.NexusError as exc:
            _note(f"could not create a key for tenant startup: {exc}")
            return
        ctx.keys[_STARTUP_USER] = made["api_key"]
        ctx.startup_tree = {e["path"][len("/tenants/startup/"):]: e["type"]
                            for e in admin.list("/tenants/startup", recursive=True)}
        _note(f"created a key for user {_STARTUP_USER!r} of tenant startup and noted its "
              f"{len(ctx.startup_tree)} entries (checked after Step 6 exports and deletes it)")


# -- the checks --------------------------------------------------------------------------


def _refused(call: Callable[[], Any], *errors: type[Exception]) -> str:
    """Run ``call``; it must raise one of ``errors`` (the name is returned)."""
    try:
        call()
    except errors as exc:
        return type(exc).__name__
    raise AssertionError("the call was allowed")


class _Checks:
    """Each claim of the guide, checked against the server's state through the SDK."""

    def __init__(self, ctx: _Context, admin: NexusClient) -> None:
        self.ctx = ctx
        self.admin = admin
        self.alice = ctx.client(ctx.keys["alice"])
        self.bob = ctx.client(ctx.keys["bob"])

    def close(self) -> None:
        self.alice.close()
        self.bob.close()

    def all(self) -> Iterator[tuple[str, Callable[[], str]]]:
        yield "Step 3: Bob (beta) is denied Acme's files", self.bob_denied
        yield "Step 3: Alice's listing holds only /tenants/acme paths", self.alice_listing
        yield "Step 4: a share is readable, then refused after revoke", self.share
        yield "Step 5: usage is counted by the server", self.usage_counted
        yield "Step 5: quotas are enforced by the server", self.quota_refusal
        yield "Step 6: a suspended tenant's key is refused", self.suspension
        yield "Step 6: export archives are complete", self.export
        yield "Step 6: the deleted tenant is gone", self.deleted
        yield "Step 7: fleet metrics agree with the tenant list", self.fleet
        yield "Production: trial, upgrade and onboarding are real", self.production

    def bob_denied(self) -> str:
        plan = "/tenants/acme/shared/project-plan.md"
        read = _refused(lambda: self.bob.read(plan), nexus.NexusPermissionError)
        _refused(lambda: self.bob.list("/tenants/acme"), nexus.NexusPermissionError)
        _refused(lambda: self.bob.write(plan, b"overwritten"), nexus.NexusPermissionError)
        _refused(lambda: self.alice.read("/tenants/beta/shared/roadmap.md"),
                 nexus.NexusPermissionError)
        return f"bob read/list/write on acme → {read}; alice read on beta → {read}"

    def alice_listing(self) -> str:
        entries = self.alice.list("/tenants/acme", recursive=True)
        outside = [e["path"] for e in entries if not e["path"].startswith("/tenants/acme/")]
        assert entries and not outside, f"outside /tenants/acme: {outside}"
        refused = _refused(lambda: self.alice.list("/tenants"), nexus.NexusPermissionError)
        return (f"{len(entries)} entries (later steps wrote more than Step 3 listed), all under "
                f"/tenants/acme; list /tenants → {refused}")

    def usage_counted(self) -> str:
        usage = self.admin.get_tenant("acme")["usage"]
        files = [e for e in self.admin.list("/tenants/acme", recursive=True)
                 if e["type"] == "file"]
        stored = sum(e["size"] for e in files)
        assert usage["users"] == 3, f"acme has {usage['users']} users, expected 3"
        assert usage["files"] == len(files), f"{usage['files']} counted, {len(files)} listed"
        assert usage["storage_bytes"] == stored, f"{usage['storage_bytes']} != {stored}"
        return (f"acme: 3 users (Step 5's +1 by hand ignored), {len(files)} files, "
                f"{stored} bytes — as listed")

    def quota_refusal(self) -> str:
        tenant = "tenant000"  # a free tenant of Step 7: 5 users at most
        assert self.admin.get_tenant(tenant)["limits"]["max_users"] == 5
        for n in range(1, 6):
            self.admin._call_rpc("admin_create_key", {
                "user_id": f"user{n}", "name": f"user{n}", "tenant_id": tenant})
        users = _refused(lambda: self.admin._call_rpc("admin_create_key", {
            "user_id": "user6", "name": "user6", "tenant_id": tenant}),
            nexus.QuotaExceededError)
        small = "tenant001"
        self.admin.update_tenant(small, limits={"max_storage_gb": 1 / 1024**2})  # 1 KiB
        self.admin.write(f"/tenants/{small}/uploads/a.bin", b"x" * 1000)
        storage = _refused(lambda: self.admin.write(f"/tenants/{small}/uploads/b.bin",
                                                    b"x" * 100), nexus.QuotaExceededError)
        assert not self.admin.exists(f"/tenants/{small}/uploads/b.bin")
        return (f"6th user of free {tenant} → {users}; a write past a 1 KiB "
                f"max_storage_gb override ({small}) → {storage}")

    def suspension(self) -> str:
        roadmap = "/tenants/beta/shared/roadmap.md"
        before = self.bob.read(roadmap)
        self.admin.suspend_tenant("beta", "demo: payment overdue")
        try:
            refused = _refused(lambda: self.bob.read(roadmap), nexus.TenantSuspendedError)
            assert self.admin.get_tenant("beta")["status"] == "suspended"
        finally:
            self.admin.reactivate_tenant("beta")
        assert self.bob.read(roadmap) == before, "bob lost his data after reactivation"
        return f"beta suspended: bob's key → {refused}; reactivated: bob reads again"

    def share(self) -> str:
        shares = [s for s in self.admin.list_shares("acme")
                  if s["path"] == _SHARED_FILE and s["target_tenant"] == "beta"]
        assert shares, f"no active share of {_SHARED_FILE} with beta"
        content = self.bob.read(_SHARED_FILE)
        assert content == self.admin.read(_SHARED_FILE)
        _refused(lambda: self.bob.read("/tenants/acme/shared/project-plan.md"),
                 nexus.NexusPermissionError)
        revoked = self.admin.revoke_share(shares[0]["share_id"])
        assert revoked["status"] == "revoked"
        refused = _refused(lambda: self.bob.read(_SHARED_FILE), nexus.NexusPermissionError)
        return (f"bob read {len(content)} bytes of the shared file (nothing else of acme); "
                f"after revoke_share → {refused}")

    def export(self) -> str:
        from nexus.rpc import METHODS

        if "export_tenant" not in METHODS:
            raise _NotApplicable("this server has no export_tenant; Step 6 only prints "
                                 "where an archive would go")
        # Step 6 exported startup before deleting it: the archive must hold the tree the
        # demo noted before Step 6, its user, and every file its manifest lists.
        stamp = r"-\d{8}\.tar\.gz"
        kept = [e["path"] for e in self.admin.list("/exports")
                if re.fullmatch(r"/exports/startup" + stamp, e["path"])]
        assert kept, "Step 6 left no /exports/startup-<YYYYMMDD>.tar.gz"
        manifest, found, users = _archive(self.admin.read(kept[-1]))
        tree = {e["path"]: e["type"] for e in manifest["files"]}
        assert tree == self.ctx.startup_tree, f"archive {tree} != {self.ctx.startup_tree}"
        listed = {e["path"]: e["sha256"] for e in manifest["files"] if e["type"] == "file"}
        assert found == listed, f"startup archive differs from its manifest: {found} {listed}"
        assert _STARTUP_USER in users, f"users in the archive: {users}"
        # A live tenant: the archive must equal what the server serves now.
        result = self.admin._call_rpc("export_tenant", {"tenant_id": "acme"})
        assert re.fullmatch(r"/exports/acme" + stamp, result["path"]), result["path"]
        expected = {e["path"][len("/tenants/acme/"):]: _sha256(self.admin.read(e["path"]))
                    for e in self.admin.list("/tenants/acme", recursive=True)
                    if e["type"] == "file"}
        _, found, _ = _archive(self.admin.read(result["path"]))
        assert found == expected, f"archive differs: {sorted(set(found) ^ set(expected))}"
        assert result["files"] == len(expected), result
        return (f"{kept[-1]} (written before the deletion): all {len(tree)} entries and "
                f"user {_STARTUP_USER}; {result['path']}: all {result['files']} files "
                f"({result['bytes']} bytes), same SHA-256 as served")

    def deleted(self) -> str:
        missing = _refused(lambda: self.admin.get_tenant("startup"),
                           nexus.NexusFileNotFoundError)
        assert not self.admin.exists("/tenants/startup")
        names = [e["name"] for e in self.admin.list("/tenants")]
        assert "startup" not in names
        with self.ctx.client(self.ctx.keys[_STARTUP_USER]) as sam:
            key = _refused(lambda: sam.list("/tenants/startup"), nexus.AuthenticationError,
                           nexus.TenantSuspendedError)
        return f"get_tenant → {missing}; /tenants/startup absent; sam's key → {key}"

    def fleet(self) -> str:
        tenants: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.admin.list_tenants(limit=1000, cursor=cursor)
            tenants += page["tenants"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        metrics = self.admin.tenant_health_metrics()
        assert metrics["total_tenants"] == len(tenants), (metrics, len(tenants))
        bulk = [t for t in tenants if re.fullmatch(r"tenant\d{3}", t["tenant_id"])]
        assert len(bulk) == 100, f"{len(bulk)} of Step 7's 100 tenants exist"
        assert metrics["total_users"] == sum(t["usage"]["users"] for t in tenants)
        plans = ", ".join(f"{k} {v}" for k, v in sorted(metrics["by_plan"].items()))
        return f"{len(tenants)} tenants ({plans}), {metrics['total_users']} users"

    def production(self) -> str:
        acme = self.admin.get_tenant(f"acme{PRODUCTION_SUFFIX}")
        startup = self.admin.get_tenant(f"startup{PRODUCTION_SUFFIX}")
        assert acme["status"] == "trial" and acme["trial_ends_at"], acme
        assert acme["plan"] == "enterprise" and acme["limits"]["max_users"] is None
        assert startup["plan"] == "pro" and startup["status"] == "active", startup
        assert startup["limits"]["max_users"] == 50
        welcome = f"/tenants/acme{PRODUCTION_SUFFIX}/shared/Welcome.md"
        assert self.admin.read(welcome).startswith(b"# Welcome")
        assert acme["usage"]["users"] == 1
        return (f"acme{PRODUCTION_SUFFIX} trial until {acme['trial_ends_at'][:10]}; "
                f"startup{PRODUCTION_SUFFIX} upgraded free → pro (50 users); "
                "admin users and Welcome.md exist")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _archive(data: bytes) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """A tenant archive's manifest, ``{relative path: SHA-256}`` of its files, its users."""
    manifest: dict[str, Any] = {}
    found: dict[str, str] = {}
    users: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            if member.name == "manifest.json":
                manifest = json.load(handle)
            elif member.name == "users.json":
                users = [u["user_id"] if isinstance(u, dict) else str(u)
                         for u in json.load(handle)]
            elif member.name.startswith("files/"):
                found[member.name[len("files/"):]] = _sha256(handle.read())
    return manifest, found, users


def _verify(checks: _Checks) -> list[Claim]:
    _heading("Verification: each claim, checked through the SDK")
    claims = []
    for name, check in checks.all():
        try:
            claim = Claim(name, True, check())
        except _NotApplicable as exc:
            claim = Claim(name, None, str(exc))
        except Exception as exc:  # a failed claim, whatever the cause
            claim = Claim(name, False, f"{type(exc).__name__}: {exc}")
        mark, style = {True: ("✓", "green"), False: ("✗", "red"),
                       None: ("–", "yellow")}[claim.held]
        console.print(Text(f"  {mark} {name}: {claim.detail}", style=style), soft_wrap=True)
        claims.append(claim)
    return claims


def _summary(claims: list[Claim], seconds: float) -> bool:
    table = Table(title="Summary", title_justify="left", show_lines=False)
    table.add_column("claim")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for claim in claims:
        result = {True: "[green]held[/green]", False: "[red]FAILED[/red]",
                  None: "[yellow]n/a[/yellow]"}[claim.held]
        table.add_row(Text(claim.claim), result, Text(claim.detail))
    console.print()
    console.print(table)
    failed = [c for c in claims if c.held is False]
    if failed:
        console.print(f"[red]✗ {len(failed)} of {len(claims)} claims failed[/red] "
                      f"({seconds:.1f} s)")
    else:
        console.print(f"[green]✓ every claim held[/green] ({len(claims)} checked, "
                      f"{seconds:.1f} s)")
    return not failed


# -- the command -------------------------------------------------------------------------


@contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="nexus-demo-"))
    try:
        yield root
    finally:
        if keep:
            console.print(f"Kept {root} (server log: {root / 'server.log'}; serve it again "
                          f"with: nexus serve --data-dir {root / 'data'})")
        else:
            shutil.rmtree(root, ignore_errors=True)


def run_demo(database_url: str | None = None, keep: bool = False) -> bool:
    """Run the guide end to end against a fresh server; True if every claim held."""
    examples = find_examples()
    started = time.monotonic()
    with _workspace(keep) as root:
        server = _server(root / "data", database_url, root / "server.log")
        try:
            return _run_against(server, examples, root, started)
        finally:
            code = server.stop()
            if code is not None:
                _note(f"server stopped (SIGTERM, exit {code})")


def _run_against(server: ServeProcess, examples: Path, root: Path, started: float) -> bool:
    _heading("Step 1: Start Multi-Tenant Nexus Server")
    server.start()
    shown = [a if a != server.database_url else _redacted(a) for a in server.args[1:]]
    _indented(f"$ python {' '.join(shown)}\n$ curl {server.url}/health\n"
              f"{json.dumps(server.health(), separators=(',', ':'))}")
    key_file = server.data_dir / "admin.key"
    if not key_file.is_file():
        raise InvalidArgumentError(
            "the server created no administrator key: the database is not empty. "
            "Give the demo a fresh database (or none, for SQLite).")
    _note(f"read the administrator key from {key_file}")
    ctx = _Context(url=server.url, admin_key=key_file.read_text().strip(),
                   keys_file=root / "keys.json", work_dir=root, keys={})
    claims: list[Claim] = []
    with ctx.client(ctx.admin_key) as admin:
        for step in STEPS:
            claims.append(_run_step(step, examples, ctx))
            _between_steps(step, ctx, admin)
        if "alice" in ctx.keys and "bob" in ctx.keys:
            checks = _Checks(ctx, admin)
            try:
                claims += _verify(checks)
            finally:
                checks.close()
        else:
            claims.append(Claim("Step 2 handed Alice's and Bob's keys on", False,
                                f"{ctx.keys_file.name} was not written; nothing to verify"))
    return _summary(claims, time.monotonic() - started)


def _redacted(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
