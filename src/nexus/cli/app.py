"""``nexus``: operate a Nexus deployment from the terminal.

Commands reach the engine only through the SDK client or the service layer; rendering
lives in :mod:`nexus.cli.render` and exit codes come from the error table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import nexus
from nexus.cli.render import console, exit_on_error, print_report

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
                        "staging files removed": report.staging_removed})


@app.command()
def demo(data_dir: DataDir = Path("nexus-data"), database_url: DatabaseUrl = None) -> None:
    """Run a short walkthrough on the embedded engine: tenants, files, listing, append."""
    from nexus.cli.walkthrough import run_walkthrough

    with exit_on_error():
        client = nexus.connect(config={"data_dir": str(data_dir), "database_url": database_url})
        with client:
            run_walkthrough(client)


def main() -> None:
    """Console-script entry point."""
    app()
