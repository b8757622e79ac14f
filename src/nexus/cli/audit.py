"""``nexus audit``: a tenant's tamper-evident audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from nexus.cli.connection import Remote, remote_command

__all__ = ["audit_app"]

audit_app = typer.Typer(
    help="The audit log: every change to a tenant, hash-chained so that tampering shows. "
         "The system administrator and the tenant's administrators read it.",
    no_args_is_help=True)

EVENT_COLUMNS = ("seq", "time", "user_id", "action", "target", "result", "detail")

TenantId = Annotated[str, typer.Argument(metavar="TENANT_ID", help="Tenant id.",
                                         show_default=False)]


@audit_app.command("query")
@remote_command
def query(remote: Remote, tenant: TenantId,
          since: Annotated[str | None, typer.Option(help="ISO-8601 time or Unix seconds.")]
          = None,
          until: Annotated[str | None, typer.Option(help="ISO-8601 time or Unix seconds.")]
          = None,
          user: Annotated[str | None, typer.Option(help="Only this user's events.")] = None,
          action: Annotated[str | None, typer.Option(
              help="Only this action, e.g. write, key.create, tenant.suspended.")] = None,
          limit: Annotated[int, typer.Option(min=1, max=10_000, help="Page size.")] = 100,
          cursor: Annotated[int | None, typer.Option(
              help="Continue after this sequence number (from the previous page).")] = None
          ) -> None:
    """Show a page of a tenant's audit events, oldest first."""
    page = remote.client.audit_query(tenant, since, until, user, action, limit, cursor)
    more = page["next_cursor"]
    remote.show(page, table=page["events"], columns=EVENT_COLUMNS,
                note=f"more: --cursor {more}" if more else None)


@audit_app.command("export")
@remote_command
def export(remote: Remote, tenant: TenantId,
           output: Annotated[str, typer.Option(
               "--output", "-o", help="Local file for the JSON Lines ('-': stdout).")] = "-"
           ) -> None:
    """Export a tenant's whole audit log as JSON Lines (one event per line)."""
    lines = remote.client.audit_export(tenant)
    if output == "-":
        sys.stdout.buffer.write(lines)
        return
    Path(output).write_bytes(lines)
    remote.show({"tenant_id": tenant, "output": output, "events": lines.count(b"\n"),
                 "bytes": len(lines)})


@audit_app.command("verify")
@remote_command
def verify(remote: Remote, tenant: TenantId) -> None:
    """Check the tenant's hash chain; exit 1 if it is broken."""
    report = remote.client.audit_verify(tenant)
    remote.show(report, title=f"audit chain of {tenant}")
    if not report["ok"]:
        raise typer.Exit(1)
