"""``nexus``: operate a Nexus deployment from the terminal.

Commands reach the engine only through the SDK client or the service layer; rendering
lives in :mod:`nexus.cli.render` and exit codes come from the error table.
"""

from __future__ import annotations

import contextlib
import inspect
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.markup import escape

import nexus
from nexus.cli.audit import audit_app
from nexus.cli.files import fs_app
from nexus.cli.keys import keys_app
from nexus.cli.rebac import rebac_app
from nexus.cli.render import console, exit_on_error, print_report, show
from nexus.cli.shares import shares_app
from nexus.cli.tenants import tenants_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="nexus",
    help="Nexus: a multi-tenant file server with ReBAC permissions, quotas and audit.",
    no_args_is_help=True,
    add_completion=False,
)



def _print_version(value: bool) -> None:
    if value:
        console.print(nexus.__version__, highlight=False)
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the Nexus version and exit.")] = False,
) -> None:
    """Nexus: a multi-tenant file server with ReBAC permissions, quotas and audit."""


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


class LogLevelChoice(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


DataDir = Annotated[Path, typer.Option("--data-dir", envvar="NEXUS_DATA_DIR",
                                       help="Data directory (SQLite metadata and blobs).")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="NEXUS_DATABASE_URL",
    help="PostgreSQL URL for metadata; SQLite in the data directory when omitted.")]
BlobUrl = Annotated[str | None, typer.Option(
    "--blob-url", envvar="NEXUS_BLOB_URL",
    help="Where file content goes: s3://BUCKET/PREFIX (AWS configuration from the "
         "environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_PROFILE, ...) or a "
         "directory; <data-dir>/blobs when omitted.")]


@contextlib.contextmanager
def _deployment(data_dir: Path, database_url: str | None,  # noqa: ANN202
                blob_url: str | None = None):
    """The existing deployment an operator command works on directly, closed afterwards:
    refused (exit 3, nothing created) where there is none or its parts are different
    deployments'."""
    from nexus.service import open_deployment
    from nexus.settings import Settings

    service = open_deployment(Settings.load({"data_dir": data_dir,
                                             "database_url": database_url,
                                             "blob_url": blob_url}))
    try:
        yield service
    finally:
        service.close()


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="NEXUS_HOST", help="Interface to listen on.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="NEXUS_PORT", help="TCP port.")] = 8080,
    data_dir: DataDir = Path("nexus-data"),
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
    log_level: Annotated[LogLevelChoice, typer.Option(
        "--log-level", envvar="NEXUS_LOG_LEVEL", case_sensitive=False,
        help="info logs one line per request; warning and error only problems.")]
    = LogLevelChoice.info,
    log_format: Annotated[LogFormatChoice, typer.Option(
        "--log-format", envvar="NEXUS_LOG_FORMAT",
        help="text (one readable line per request) or json (one object per line).")]
    = LogFormatChoice.text,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", envvar="NEXUS_METRICS_PORT",
        help="Also serve /metrics WITHOUT a key on this port (for a private scraper "
             "network); /metrics on the main port always needs the admin key.")] = None,
    metrics_host: Annotated[str, typer.Option(
        "--metrics-host", envvar="NEXUS_METRICS_HOST",
        help="Interface of --metrics-port.")] = "127.0.0.1",
    forwarded_allow_ips: Annotated[str, typer.Option(
        "--forwarded-allow-ips", envvar="NEXUS_FORWARDED_ALLOW_IPS",
        help="Comma-separated addresses or networks of the reverse proxies whose "
             "X-Forwarded-For / X-Forwarded-Proto to believe ('*': any). Default: none, "
             "the client is the TCP peer.")] = "",
    body_idle_timeout: Annotated[float | None, typer.Option(
        "--body-idle-timeout", envvar="NEXUS_BODY_IDLE_TIMEOUT",
        help="Seconds a request body may bring no byte before it ends with 408 "
             "(default 30).")] = None,
    body_min_rate: Annotated[float | None, typer.Option(
        "--body-min-rate", envvar="NEXUS_BODY_MIN_RATE",
        help="Bytes per second a request body must average after its first "
             "--body-idle-timeout seconds, else 408; 0: no rate rule (default 1024).")] = None,
    streams_per_tenant: Annotated[int | None, typer.Option(
        "--streams-per-tenant", envvar="NEXUS_STREAMS_PER_TENANT",
        help="Uploads, downloads and large RPC bodies one tenant may have open at once; "
             "more get 429 with Retry-After (default 8).")] = None,
    streams_total: Annotated[int | None, typer.Option(
        "--streams-total", envvar="NEXUS_STREAMS_TOTAL",
        help="The same for all tenants together; must be below --worker-threads "
             "(default 32).")] = None,
    worker_threads: Annotated[int | None, typer.Option(
        "--worker-threads", envvar="NEXUS_WORKER_THREADS",
        help="Threads that run requests (default 40).")] = None,
    max_connections: Annotated[int | None, typer.Option(
        "--max-connections", envvar="NEXUS_MAX_CONNECTIONS",
        help="Connections and requests held at once; more get 503 at once "
             "(default 2048; idle keep-alive connections count).")] = None,
    audit_delay: Annotated[float | None, typer.Option(
        "--audit-delay", envvar="NEXUS_AUDIT_DELAY",
        help="Seconds read and denial events may wait to be committed together (default "
             "0.05): the most of them a crash can lose. Tenants with audit_reads 'sync' "
             "do not wait.")] = None,
    audit_queue: Annotated[int | None, typer.Option(
        "--audit-queue", envvar="NEXUS_AUDIT_QUEUE",
        help="Read and denial events waiting at most; past it requests wait to record "
             "theirs (default 10000).")] = None,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", envvar="NEXUS_PUBLIC_URL",
        help="The address browsers reach this server at (https://files.example.com), "
             "for signed URLs; default: the address the signing client used.")] = None,
    cors_origins: Annotated[str | None, typer.Option(
        "--cors-origins", envvar="NEXUS_CORS_ORIGINS",
        help="Comma-separated origins whose pages may use signed URLs from a browser "
             "(CORS on /api/signed only; '*': any). Default: none.")] = None,
    signed_url_max_lifetime: Annotated[float | None, typer.Option(
        "--signed-url-max-lifetime", envvar="NEXUS_SIGNED_URL_MAX_LIFETIME",
        help="The longest a signed URL may live, in seconds (default 604800: 7 days).")]
    = None,
    workers: Annotated[str, typer.Option(
        "--workers", envvar="NEXUS_WORKERS",
        help="Server processes on this port: a number, or 'auto' (one per CPU core). "
             "They share rate limits, quotas and caches like replicas do; stream caps "
             "and --max-connections apply to each.")] = "1",
) -> None:
    """Run the Nexus server. The first start prints the administrator's API key once and
    saves it in <data-dir>/admin.key (mode 0600)."""
    from nexus.cli.serve import parse_workers, run_server
    from nexus.settings import Settings

    with exit_on_error():
        processes = parse_workers(workers)
        settings = Settings.load({"data_dir": data_dir, "database_url": database_url,
                                  "blob_url": blob_url,
                                  "body_idle_timeout": body_idle_timeout,
                                  "body_min_rate": body_min_rate,
                                  "streams_per_tenant": streams_per_tenant,
                                  "streams_total": streams_total,
                                  "worker_threads": worker_threads,
                                  "max_connections": max_connections,
                                  "audit_delay": audit_delay, "audit_queue": audit_queue,
                                  "public_url": public_url, "cors_origins": cors_origins,
                                  "signed_url_max_lifetime": signed_url_max_lifetime})
        run_server(settings, host=host, port=port, log_level=log_level.value,
                   log_format=log_format.value, metrics_host=metrics_host,
                   metrics_port=metrics_port,
                   forwarded_allow_ips=[ip.strip() for ip in forwarded_allow_ips.split(",")
                                        if ip.strip()], workers=processes)


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
    # --user/--tenant as in `nexus keys create`; --user-id/--tenant-id still work.
    user_id: Annotated[str, typer.Option("--user", "--user-id", help="User the key acts as.")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "operator key",
    tenant_id: Annotated[str | None, typer.Option(
        "--tenant", "--tenant-id", help="Tenant of the user.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="A system administrator key.")] = False,
    expires_at: Annotated[str | None, typer.Option(help="ISO-8601 expiry.")] = None,
    data_dir: DataDir = Path("nexus-data"),
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
) -> None:
    """Create an API key (printed once) without going through a running server."""
    from nexus.types import Principal

    with exit_on_error(), _deployment(data_dir, database_url, blob_url) as service:
        created = service.keys.admin_create_key(
            Principal.local_admin(), user_id, name, tenant_id=tenant_id, is_admin=admin,
            expires_at=expires_at)
    console.print(created["api_key"], soft_wrap=True, highlight=False)


@app.command()
def version() -> None:
    """Print the Nexus version."""
    console.print(nexus.__version__)


@app.command()
def fsck(
    data_dir: DataDir = Path("nexus-data"),
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Recount usage counters from the stored files and recreate "
                         "missing parent directories (audited as fsck.repair), then "
                         "check again. Never deletes files, blobs or audit events.")] = False,
    deep: Annotated[bool, typer.Option(
        "--deep", help="Also read every referenced blob and check its SHA-256.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print machine-readable JSON instead of tables.")] = False,
) -> None:
    """Check metadata ↔ blobs ↔ usage counters ↔ audit chains; exit 0 if clean (or clean
    after --repair), 1 if problems remain."""
    from nexus.errors import NexusError

    with exit_on_error(as_json), _deployment(data_dir, database_url, blob_url) as service:
        report = service.maintenance.fsck(repair=repair, deep=deep)
    if as_json:
        show(report.to_dict(), as_json=True)
    else:
        print_report("fsck", {"partitions checked": report.partitions_checked,
                              "files checked": report.files_checked,
                              **({"blobs hashed": report.blobs_hashed} if deep else {}),
                              "audit events checked": report.audit_events_checked,
                              "unreferenced blobs (for gc)": report.unreferenced_blobs,
                              "problems found": len(report.problems),
                              **({"repairs made": len(report.repairs)} if repair else {}),
                              "problems remaining": len(report.remaining)})
        for problem in report.problems:
            mark = "[red]✗[/red]" if problem in report.remaining else "[yellow]~[/yellow]"
            console.print(f"{mark} {escape(str(problem))}", highlight=False, soft_wrap=True)
        for change in report.repairs:
            console.print(f"[green]↻[/green] {escape(change)}", highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(NexusError.exit_code)  # the error table's generic code: 1
    if not as_json:
        console.print("[green]✓ clean[/green]" if not report.problems
                      else "[green]✓ clean after repair[/green]")


@app.command()
def gc(data_dir: DataDir = Path("nexus-data"), database_url: DatabaseUrl = None,
       blob_url: BlobUrl = None,
       grace: Annotated[float, typer.Option(
           help="Keep unreferenced blobs younger than this many seconds "
                "(a writer may still be about to commit them).")] = 3600.0,
       dry_run: Annotated[bool, typer.Option(
           "--dry-run", help="Report what would be deleted; delete nothing.")] = False,
       as_json: Annotated[bool, typer.Option(
           "--json", help="Print machine-readable JSON instead of tables.")] = False,
       ) -> None:
    """Delete stored content that no file references any more. Refuses, deleting nothing,
    unless the database and the blob store belong to the same deployment."""
    with exit_on_error(as_json), _deployment(data_dir, database_url, blob_url) as service:
        report = service.maintenance.gc(grace_seconds=grace, dry_run=dry_run)
    if as_json:
        show(report.to_dict(), as_json=True)
        return
    verb = "would remove" if dry_run else "removed"
    show({"blobs": report.blobs_removed, "blob bytes": report.bytes_removed,
          "staging files": report.staging_removed,
          "audit events past retention": report.audit_events_removed},
         title=f"gc: {verb}")
    if report.partitions:
        show(report.to_dict()["partitions"], columns=["tenant", "blobs", "bytes"],
             title=f"per tenant: {verb}")
    if dry_run:
        console.print("dry run: nothing was deleted", highlight=False)


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
    command = typer.main.get_command(app)
    tidy_help(command)
    command()


def tidy_help(command: click.Command) -> None:
    # Command lists show a docstring's first paragraph with its hard line breaks; join
    # them so the list reads as prose at any terminal width.
    for sub in getattr(command, "commands", {}).values():
        if sub.help and not sub.short_help:
            sub.short_help = " ".join(inspect.cleandoc(sub.help).split("\n\n")[0].split())
        tidy_help(sub)
    # Typer shows every option's type, so a flag reads "--help <bool>" as if it took a
    # value; a flag takes none, so it shows none.
    help_option = command.get_help_option(typer.Context(command))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
