"""``nexus keys``: API keys of users and administrators."""

from __future__ import annotations

from typing import Annotated

import typer

from nexus.cli.connection import Remote, Yes, confirm, remote_command

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="API keys: create (the secret is shown once), list (never the secret), revoke. "
         "The system administrator manages every key; a tenant's administrator those of "
         "its tenant.",
    no_args_is_help=True)

KEY_COLUMNS = ("key_id", "tenant_id", "user_id", "name", "is_admin", "created_at",
               "expires_at", "revoked_at", "last_used_at")


@keys_app.command("create")
@remote_command
def create(remote: Remote,
           user: Annotated[str, typer.Option(help="User the key acts as (created on its "
                                                  "first key).", show_default=False)],
           tenant: Annotated[str | None, typer.Option(
               help="Tenant of the user; required unless --admin.")] = None,
           name: Annotated[str, typer.Option(help="A label for the key.")] = "cli key",
           admin: Annotated[bool, typer.Option(
               "--admin", help="A system administrator key (no tenant).")] = False,
           expires_at: Annotated[str | None, typer.Option(
               help="ISO-8601 time or Unix seconds after which the key is refused.")] = None
           ) -> None:
    """Create an API key. The key's secret is printed once and cannot be shown again."""
    created = remote.client._call_rpc("admin_create_key", {
        "user_id": user, "name": name, "tenant_id": tenant, "is_admin": admin,
        "expires_at": expires_at})
    remote.show(created, title="API key (store it now: it is shown only once)")


@keys_app.command("list")
@remote_command
def list_(remote: Remote,
          tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
          user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None
          ) -> None:
    """List keys (id, owner, label, dates); secrets are never shown."""
    keys = remote.client._call_rpc("admin_list_keys", {"tenant_id": tenant, "user_id": user})
    remote.show(keys, columns=KEY_COLUMNS, title="API keys")


@keys_app.command("revoke")
@remote_command
def revoke(remote: Remote,
           key_id: Annotated[str, typer.Argument(
               metavar="KEY_ID", help="Key id (the part after nx_).", show_default=False)],
           yes: Yes = False) -> None:
    """Revoke a key: its next request is refused. Asks first."""
    confirm(f"Revoke API key {key_id}? Anything using it stops working.", yes)
    remote.show(remote.client._call_rpc("admin_revoke_key", {"key_id": key_id}),
                title=f"key {key_id}")
