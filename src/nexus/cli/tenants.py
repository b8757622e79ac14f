"""``nexus tenants``: the tenant lifecycle, usage, billing, export and import."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from nexus.cli import render
from nexus.cli.connection import (
    Progress,
    Remote,
    Yes,
    confirm,
    file_chunks,
    progress_wanted,
    remote_command,
    save_stream,
)
from nexus.errors import ConflictError

__all__ = ["tenants_app"]

tenants_app = typer.Typer(
    help="Tenants: create and inspect them, change plans and limits, suspend and "
         "reactivate, see usage and the month's bill, export to and import from archives, "
         "delete. Needs the system administrator's key (show, usage and bill also accept "
         "the tenant's administrator).",
    no_args_is_help=True)

TENANT_COLUMNS = ("tenant_id", "name", "plan", "status", "users", "files", "storage_bytes",
                  "created_at")
SUMMARY = ("tenant_id", "name", "plan", "status", "trial_ends_at", "limits", "usage")

TenantId = Annotated[str, typer.Argument(metavar="TENANT_ID", help="Tenant id, e.g. acme.",
                                         show_default=False)]
Plan = Annotated[str | None, typer.Option(help="Plan: free, pro or enterprise.")]
MaxUsers = Annotated[int | None, typer.Option(help="Override the plan's user limit.")]
MaxStorage = Annotated[float | None, typer.Option(help="Override the plan's storage (GB).")]
MaxFiles = Annotated[int | None, typer.Option(help="Override the plan's file-count limit.")]


def _limits(**given: Any) -> dict[str, Any]:
    return {name: value for name, value in given.items() if value is not None}


@tenants_app.command("create")
@remote_command
def create(remote: Remote, tenant_id: TenantId,
           name: Annotated[str | None, typer.Option(help="Display name.")] = None,
           plan: Plan = "free",
           trial_days: Annotated[float | None, typer.Option(
               help="Start as a trial ending after this many days.")] = None,
           max_users: MaxUsers = None, max_storage_gb: MaxStorage = None,
           max_files: MaxFiles = None) -> None:
    """Register a tenant and create /tenants/<id> with users/ shared/ uploads/ exports/."""
    options = _limits(max_users=max_users, max_storage_gb=max_storage_gb, max_files=max_files)
    if trial_days is not None:
        options.update(status="trial", trial_days=trial_days)
    tenant = remote.client.create_tenant(tenant_id, name, plan=plan or "free", **options)
    remote.show(tenant, table={k: tenant[k] for k in SUMMARY}, title=f"tenant {tenant_id}")


@tenants_app.command("list")
@remote_command
def list_(remote: Remote, plan: Plan = None,
          status: Annotated[str | None, typer.Option(
              help="active, trial, suspended or cancelled.")] = None,
          limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 100,
          cursor: Annotated[str | None, typer.Option(
              help="Continue after this tenant id (from the previous page).")] = None) -> None:
    """List tenants with their plan, status and usage, a page at a time."""
    page = remote.client.list_tenants(plan=plan, status=status, limit=limit, cursor=cursor)
    more, rows = page["next_cursor"], [{**t, **t["usage"]} for t in page["tenants"]]
    remote.show(page, table=rows, columns=TENANT_COLUMNS,
                note=f"more: --cursor {more}" if more else None)


@tenants_app.command("show")
@remote_command
def show(remote: Remote, tenant_id: TenantId) -> None:
    """A tenant's record: plan, status, effective limits, live usage, settings."""
    tenant = remote.client.get_tenant(tenant_id)
    remote.show(tenant, title=f"tenant {tenant_id}")


@tenants_app.command("update")
@remote_command
def update(remote: Remote, tenant_id: TenantId,
           name: Annotated[str | None, typer.Option(help="New display name.")] = None,
           plan: Plan = None, max_users: MaxUsers = None, max_storage_gb: MaxStorage = None,
           max_files: MaxFiles = None) -> None:
    """Change a tenant's name, plan or limits; they apply from its next operation.

    Limit options replace the tenant's limit overrides as a whole: a limit not given
    falls back to the plan's."""
    limits = _limits(max_users=max_users, max_storage_gb=max_storage_gb, max_files=max_files)
    changes = _limits(name=name, plan=plan, limits=limits or None)
    if not changes:
        raise typer.BadParameter("give at least one of --name, --plan, --max-*")
    tenant = remote.client.update_tenant(tenant_id, **changes)
    remote.show(tenant, table={k: tenant[k] for k in SUMMARY}, title=f"tenant {tenant_id}")


@tenants_app.command("suspend")
@remote_command
def suspend(remote: Remote, tenant_id: TenantId,
            reason: Annotated[str, typer.Option(help="Recorded in the audit log.")]
            = "suspended by the operator", yes: Yes = False) -> None:
    """Refuse every key of the tenant from its next request (data and grants stay)."""
    confirm(f"Suspend tenant {tenant_id}? Its users lose access at once.", yes)
    tenant = remote.client.suspend_tenant(tenant_id, reason)
    remote.show(tenant, table={k: tenant[k] for k in SUMMARY}, title=f"tenant {tenant_id}")


@tenants_app.command("reactivate")
@remote_command
def reactivate(remote: Remote, tenant_id: TenantId) -> None:
    """Restore a suspended tenant's access exactly as it was."""
    tenant = remote.client.reactivate_tenant(tenant_id)
    remote.show(tenant, table={k: tenant[k] for k in SUMMARY}, title=f"tenant {tenant_id}")


@tenants_app.command("usage")
@remote_command
def usage(remote: Remote, tenant_id: TenantId) -> None:
    """Usage against limits (users, storage, files) and warnings at 80% or more."""
    report = remote.client.get_usage(tenant_id)
    used, limits, pct = report["usage"], report["limits"], report["utilization"]
    rows = [{"resource": r, "used": used.get(r), "limit": limits.get(f"max_{r}"),
             "utilization %": pct.get(r)} for r in ("users", "storage_gb", "files")]
    remote.show(report, table=rows, title=f"usage of {tenant_id}",
                note="\n".join(f"warning: {w}" for w in report["warnings"]) or None)


@tenants_app.command("bill")
@remote_command
def bill(remote: Remote, tenant_id: TenantId,
         month: Annotated[str | None, typer.Option(
             help="YYYY-MM; default: this month.")] = None) -> None:
    """The month's bill so far: plan price plus overage on peak users and storage."""
    preview = remote.client.billing_preview(tenant_id, month)
    remote.show(preview, title=f"bill of {tenant_id}, {preview['month']}")


@tenants_app.command("export")
@remote_command
def export(remote: Remote, tenant_id: TenantId,
           output: Annotated[str | None, typer.Option(
               "--output", "-o", help="Local file for the archive ('-': stdout); default: "
                                      "the archive's name in the current directory.")] = None,
           path: Annotated[str | None, typer.Option(
               help="Where the server stores the archive; default "
                    "/exports/<id>-<YYYYMMDD>.tar.gz.")] = None,
           progress: Progress = None) -> None:
    """Archive a tenant on the server (files with SHA-256 manifest, record, users, grants,
    shares) and download the archive."""
    made = remote.client.export_tenant(tenant_id, path)
    dest = output or made["path"].rsplit("/", 1)[-1]
    save_stream(remote.client.read_stream(made["path"]), dest, total=made["archive_bytes"],
                label=dest, progress=progress)
    if dest != "-":
        remote.show({**made, "local": dest}, title=f"export of {tenant_id}")


@tenants_app.command("import")
@remote_command
def import_(remote: Remote,
            archive: Annotated[Path, typer.Argument(
                metavar="ARCHIVE",
                help="Local archive made by `nexus tenants export`.", exists=True,
                dir_okay=False, readable=True)],
            tenant_id: Annotated[str | None, typer.Option(
                "--as", help="Import under this tenant id instead of the archive's.")] = None,
            progress: Progress = None) -> None:
    """Upload an archive to /exports/ on the server and recreate the tenant from it (which
    must not exist). Users come back without keys."""
    target = f"/exports/import-{uuid.uuid4().hex[:8]}-{archive.name}"
    chunks = render.track(file_chunks(archive), total=archive.stat().st_size,
                          label=archive.name, enabled=progress_wanted(progress))
    remote.client.write(target, chunks)
    try:
        remote.show(remote.client.import_tenant(target, tenant_id), title="imported")
    finally:
        remote.client.delete(target)


@tenants_app.command("delete")
@remote_command
def delete(remote: Remote, tenant_id: TenantId, yes: Yes = False) -> None:
    """Delete a tenant for good: files, content, grants, keys, users. Asks first, saying
    what would go."""
    if not yes:
        try:
            remote.client.delete_tenant(tenant_id)  # changes nothing: says what would go
        except ConflictError as exc:
            d = exc.details
            confirm(f"Delete tenant {tenant_id} with {d.get('files')} files "
                    f"({d.get('storage_bytes')} bytes), {d.get('users')} users and their "
                    f"keys, {d.get('grants')} grants?", yes)
    remote.show(remote.client.delete_tenant(tenant_id, confirm=True), title="deleted")
