"""``nexus``: operate a Nexus deployment from the terminal.

Commands reach the engine only through the SDK client or the service layer; rendering
lives in :mod:`nexus.cli.render` and exit codes come from the error table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import nexus
from nexus.cli.audit import audit_app
from nexus.cli.files import fs_app
from nexus.cli.keys import keys_app
from nexus.cli.rebac import rebac_app
from nexus.cli.render import console, exit_on_error, print_report
from nexus.cli.shares import shares_app
from nexus.cli.tenants import tenants_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="nexus",
    help="Nexus: a multi-tenant file server with ReBAC permissions, quotas and audit.",
    no_args_is_help=True,
    add_completion=False,
)

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="NEXUS_DATA_DIR",
                                       help="Data directory (SQLite metadata and blobs).")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="NEXUS_DATABASE_URL",
    help="PostgreSQL URL for metadata; SQLite in the data directory when omitted.")]


def _service(data_dir: Path, database_url: str | None):  # noqa: ANN202
    from nexus.service import bootstrap
    from nexus.settings import Settings

    return bootstrap(Settings.load({"data_dir": data_dir, "database_url": database_url}))


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="NEXUS_HOST", help="Interface to listen on.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="NEXUS_PORT", help="TCP port.")] = 8080,
    data_dir: DataDir = Path("nexus-data"),
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option("--log-level", envvar="NEXUS_LOG_LEVEL",
                                           help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the Nexus server. The first start prints the administrator's API key once and
    saves it in <data-dir>/admin.key (mode 0600)."""
    from nexus.cli.serve import run_server
    from nexus.settings import Settings

    with exit_on_error():
        settings = Settings.load({"data_dir": data_dir, "database_url": database_url})
        run_server(settings, host=host, port=port, log_level=log_level)


admin_app = typer.Typer(help="Operator commands that talk to the database directly.",
                        no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(fs_app, name="fs")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(shares_app, name="shares")
app.add_typer(audit_app, name="audit")
app.add_typer(rebac_app, name="rebac")


@admin_app.command("create-key")
def create_key(
    user_id: Annotated[str, typer.Option(help="User the key acts as.")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "operator key",
    tenant_id: Annotated[str | None, typer.Option(help="Tenant of the user.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="A system administrator key.")] = False,
    expires_at: Annotated[str | None, typer.Option(help="ISO-8601 expiry.")] = None,
    data_dir: DataDir = Path("nexus-data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key (printed once) without going through a running server."""
    from nexus.types import Principal

    with exit_on_error():
        service = _service(data_dir, database_url)
        try:
            created = service.keys.admin_create_key(
                Principal.local_admin(), user_id, name, tenant_id=tenant_id, is_admin=admin,
                expires_at=expires_at)
        finally:
            service.close()
    console.print(created["api_key"], soft_wrap=True, highlight=False)


@app.command()
def version() -> None:
    """Print the Nexus version."""
    console.print(nexus.__version__)


@app.command()
def fsck(data_dir: DataDir = Path("nexus-data"), database_url: DatabaseUrl = None) -> None:
    """Check that metadata and stored content agree; exit 1 if they do not."""
    with exit_on_error():
        service = _service(data_dir, database_url)
        report = service.maintenance.fsck()
        service.close()
    print_report("fsck", {"files checked": report.files_checked,
                          "unreferenced blobs": report.unreferenced_blobs,
                          "problems": len(report.problems)})
    for problem in report.problems:
        console.print(f"[red]✗[/red] {problem}")
    if not report.ok:
        raise typer.Exit(1)
    console.print("[green]✓ clean[/green]")


@app.command()
def gc(data_dir: DataDir = Path("nexus-data"), database_url: DatabaseUrl = None,
       grace: Annotated[float, typer.Option(
           help="Keep unreferenced blobs younger than this many seconds "
                "(a writer may still be about to commit them).")] = 3600.0) -> None:
    """Delete stored content that no file references any more."""
    with exit_on_error():
        service = _service(data_dir, database_url)
        report = service.maintenance.gc(grace_seconds=grace)
        service.close()
    print_report("gc", {"blobs removed": report.blobs_removed,
                        "bytes removed": report.bytes_removed,
                        "staging files removed": report.staging_removed,
                        "audit events past retention": report.audit_events_removed})


@app.command()
def demo(
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="URL of an EMPTY PostgreSQL database for the demo's server; "
                               "SQLite in the temporary data directory when omitted.")] = None,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Keep the temporary data directory and server log.")] = False,
) -> None:
    """Run the multi-tenant SaaS guide against a real server: start `nexus serve` on a free
    loopback port, run every step's script from examples/multi_tenant_saas, check each
    claim through the SDK and print a summary. Exit 0 only if every claim held."""
    from nexus.cli.demo import run_demo

    with exit_on_error():
        held = run_demo(database_url=database_url, keep=keep)
    if not held:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    app()
