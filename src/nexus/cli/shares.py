"""``nexus shares``: cross-tenant shares."""

from __future__ import annotations

from typing import Annotated

import typer

from nexus.cli.connection import Remote, Yes, confirm, remote_command

__all__ = ["shares_app"]

shares_app = typer.Typer(
    help="Cross-tenant shares: let every member of another tenant read (or write) a path "
         "until the share expires or is revoked. Owners of the path and the system "
         "administrator share; tenant administrators list.",
    no_args_is_help=True)

SHARE_COLUMNS = ("share_id", "source_tenant", "target_tenant", "path", "permission",
                 "status", "created_at", "expires_at")


@shares_app.command("create")
@remote_command
def create(remote: Remote,
           path: Annotated[str, typer.Argument(
               metavar="PATH", help="Path under /tenants/<source>/ to share.",
               show_default=False)],
           to: Annotated[str, typer.Option("--to", help="Target tenant id.",
                                           show_default=False)],
           permission: Annotated[str, typer.Option(
               help="can_read or can_write.")] = "can_read",
           expires_in_days: Annotated[float | None, typer.Option(
               help="End the share after this many days.")] = None) -> None:
    """Share a file or directory with another tenant."""
    share = remote.client.create_share(path, to, permission, expires_in_days=expires_in_days)
    remote.show(share, title="share")


@shares_app.command("list")
@remote_command
def list_(remote: Remote,
          tenant: Annotated[str, typer.Argument(metavar="TENANT_ID", help="Tenant id.",
                                                show_default=False)],
          incoming: Annotated[bool, typer.Option(
              "--incoming", help="Shares into the tenant instead of out of it.")] = False,
          all_: Annotated[bool, typer.Option(
              "--all", help="Include expired and revoked shares.")] = False) -> None:
    """List a tenant's outgoing (or --incoming) shares."""
    direction = "incoming" if incoming else "outgoing"
    shares = remote.client.list_shares(tenant, direction, include_expired=all_)
    remote.show(shares, columns=SHARE_COLUMNS, title=f"{direction} shares of {tenant}")


@shares_app.command("revoke")
@remote_command
def revoke(remote: Remote,
           share_id: Annotated[str, typer.Argument(
               metavar="SHARE_ID", help="Share id (from `shares list`).", show_default=False)],
           yes: Yes = False) -> None:
    """End a share; its next use is refused. Asks first."""
    confirm(f"Revoke share {share_id}?", yes)
    remote.show(remote.client.revoke_share(share_id), title="share")
