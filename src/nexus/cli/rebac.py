"""``nexus rebac``: relationship tuples, permission checks and authorization models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nexus.cli.connection import Remote, parse_ref, remote_command

__all__ = ["rebac_app"]

rebac_app = typer.Typer(
    help="Permissions (ReBAC): grant and revoke relations, check a permission, list tuples, "
         "read or replace a tenant's authorization model. Subjects and objects are "
         "TYPE:ID, e.g. user:alice, group:eng#member, tenant:beta#member, "
         "file:/tenants/acme/shared.",
    no_args_is_help=True)

TUPLE_COLUMNS = ("tuple_id", "subject", "relation", "object", "expires_at")

Subject = Annotated[str, typer.Argument(
    metavar="SUBJECT", show_default=False,
    help="TYPE:ID or TYPE:ID#RELATION, e.g. user:alice or group:eng#member.")]
Object = Annotated[str, typer.Argument(
    metavar="OBJECT", help="TYPE:ID, e.g. file:/tenants/acme/shared.", show_default=False)]
Tenant = Annotated[str | None, typer.Option(
    help="Tenant whose tuples these are; default: the object's tenant.")]


def _subject(row: dict[str, Any]) -> str:
    relation = row.get("subject_relation")
    return f"{row['subject_type']}:{row['subject_id']}" + (f"#{relation}" if relation else "")


@rebac_app.command("grant")
@remote_command
def grant(remote: Remote, subject: Subject,
          relation: Annotated[str, typer.Argument(
              metavar="RELATION",
              help="owner, editor, viewer, can_read, can_write, member…",
              show_default=False)],
          object_: Object, tenant: Tenant = None,
          expires_at: Annotated[str | None, typer.Option(
              help="ISO-8601 time or Unix seconds when the grant lapses.")] = None) -> None:
    """Grant RELATION on OBJECT to SUBJECT; prints the tuple id."""
    tuple_id = remote.client.rebac_create(parse_ref(subject, userset=True), relation,
                                          parse_ref(object_), tenant, expires_at)
    remote.show({"tuple_id": tuple_id, "subject": subject, "relation": relation,
                 "object": object_})


@rebac_app.command("revoke")
@remote_command
def revoke(remote: Remote,
           tuple_id: Annotated[str | None, typer.Argument(
               metavar="TUPLE_ID",
               help="Tuple id (from `rebac tuples` or `grant`).", show_default=False)] = None,
           subject: Annotated[str | None, typer.Option(help="Instead of an id: TYPE:ID.")]
           = None,
           relation: Annotated[str | None, typer.Option(help="… with this relation")] = None,
           object_: Annotated[str | None, typer.Option("--object", help="… on TYPE:ID.")]
           = None, tenant: Tenant = None) -> None:
    """Delete a tuple by id, or by --subject, --relation and --object."""
    deleted = remote.client.rebac_delete(
        tuple_id, subject=subject and parse_ref(subject, userset=True), relation=relation,
        object=object_ and parse_ref(object_), tenant_id=tenant)
    remote.show({"deleted": deleted, "tuple_id": tuple_id})


@rebac_app.command("check")
@remote_command
def check(remote: Remote, subject: Subject,
          permission: Annotated[str, typer.Argument(
              metavar="PERMISSION",
              help="can_read, can_write, owner…", show_default=False)],
          object_: Object, tenant: Tenant = None) -> None:
    """Whether SUBJECT has PERMISSION on OBJECT (prints allowed or denied, exits 0)."""
    allowed = remote.client.rebac_check(parse_ref(subject, userset=True), permission,
                                        parse_ref(object_), tenant)
    remote.show({"subject": subject, "permission": permission, "object": object_,
                 "allowed": allowed}, table="allowed" if allowed else "denied")


@rebac_app.command("tuples")
@remote_command
def tuples(remote: Remote,
           subject: Annotated[str | None, typer.Option(help="Only this TYPE:ID.")] = None,
           relation: Annotated[str | None, typer.Option(help="Only this relation.")] = None,
           object_: Annotated[str | None, typer.Option("--object", help="Only on TYPE:ID.")]
           = None, tenant: Tenant = None,
           include_expired: Annotated[bool, typer.Option(
               "--include-expired", help="Also lapsed grants.")] = False) -> None:
    """List stored tuples matching the filters."""
    found = remote.client.rebac_list_tuples(
        subject and parse_ref(subject, userset=True), relation,
        object_ and parse_ref(object_), tenant, include_expired)
    rows = [{**t, "subject": _subject(t), "object": f"{t['object_type']}:{t['object_id']}"}
            for t in found]
    remote.show(found, table=rows, columns=TUPLE_COLUMNS, title="tuples")


@rebac_app.command("model")
@remote_command
def model(remote: Remote,
          tenant: Annotated[str | None, typer.Option(help="Tenant of the model.")] = None,
          set_: Annotated[Path | None, typer.Option(
              "--set", help="Replace the model with this OpenFGA DSL file ('-': stdin); it "
                            "is validated against the tenant's tuples.")] = None) -> None:
    """Print a tenant's authorization model (OpenFGA DSL), or replace it with --set."""
    if set_ is None:
        found = remote.client.rebac_read_model(tenant)
    else:
        text = sys.stdin.read() if str(set_) == "-" else set_.read_text(encoding="utf-8")
        found = remote.client.rebac_write_model(text, tenant)
    remote.show(found, table=found.get("model", found))
