"""What every Nexus client offers, written once: each call is one RPC.

:class:`ClientAPI` builds the parameters of each call and hands them to ``_call_rpc``.
:class:`~nexus.client.NexusClient` implements ``_call_rpc`` by blocking on its
transport, :class:`~nexus.client.AsyncNexusClient` by awaiting its transport, so the two
clients have the same names, signatures, results and exceptions by construction. Calls
that do more than one RPC (paging, streams, signed URLs) are written in each client.
"""

from __future__ import annotations

from typing import Any

from nexus.blobs.base import Data

__all__ = ["PAGE", "ClientAPI", "Ref", "sign_url_params"]

Ref = tuple[str, str] | tuple[str, str, str] | list[str]

#: Entries per page when a client walks every page for its caller.
PAGE = 1000


def sign_url_params(path: str, method: str, expires_in: float, max_size: int | None,
                    content_type: str | None) -> dict[str, Any]:
    """The ``sign_url`` RPC's parameters (both clients' ``sign_url`` make this call)."""
    return {"path": path, "method": method, "expires_in": expires_in, "max_size": max_size,
            "content_type": content_type}


class ClientAPI:
    """The one-RPC calls. Subclasses provide ``_call_rpc`` (and ``_pages``).

    Every method ends ``return self._call_rpc(…)`` (or ``self._pages(…)``), even those
    whose result is ``None``: in the async client that returns the coroutine its
    wrapper awaits."""

    def _call_rpc(self, method: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def _pages(self, method: str, params: dict[str, Any], limit: int | None,
               after: str | None, position: Any) -> Any:
        raise NotImplementedError

    # -- directories -------------------------------------------------------------------

    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = True) -> dict[str, Any]:
        """Create a directory; missing parents too unless ``parents=False``."""
        return self._call_rpc("mkdir", {"path": path, "parents": parents, "exist_ok": exist_ok})

    def rmdir(self, path: str, recursive: bool = False) -> None:
        """Remove a directory; a non-empty one only with ``recursive=True``."""
        return self._call_rpc("rmdir", {"path": path, "recursive": recursive})

    # -- content -----------------------------------------------------------------------

    def write(self, path: str, data: Data, *, if_match: str | None = None,
              if_none_match: bool = False) -> dict[str, Any]:
        """Create or replace a file; ``data`` is bytes, a binary file or a bytes iterator."""
        return self._call_rpc("write", {"path": path, "data": data, "if_match": if_match,
                                        "if_none_match": if_none_match})

    def write_many(self, files: dict[str, bytes]) -> dict[str, Any]:
        """Write many small files in one call (at most 1,000 files, 32 MiB in all): one
        result per path, in order — ``{"path", "ok": True, "info"}`` or ``{"path", "ok":
        False, "error": {"code", "message"}}`` — plus ``written`` and ``failed`` counts.
        A path the caller may not write (or a bad one) refuses the whole call; a file the
        quota or the tree refuses at commit leaves the others written."""
        return self._call_rpc("write_many", {"files": files})

    def append(self, path: str, data: Data) -> dict[str, Any]:
        """Append to a file (created if missing); concurrent appends never lose data."""
        return self._call_rpc("append", {"path": path, "data": data})

    def read(self, path: str, *, offset: int = 0, length: int | None = None) -> bytes:
        """A file's bytes, or the range ``[offset, offset + length)``."""
        return self._call_rpc("read", {"path": path, "offset": offset, "length": length})

    # -- metadata ----------------------------------------------------------------------

    def stat(self, path: str) -> dict[str, Any]:
        """Metadata of a file or directory."""
        return self._call_rpc("stat", {"path": path})

    def exists(self, path: str) -> bool:
        """True if ``path`` exists (permission errors are raised, not hidden)."""
        return self._call_rpc("exists", {"path": path})

    def list_page(self, path: str = "/", recursive: bool = False, *, limit: int = PAGE,
                  cursor: str | None = None) -> dict[str, Any]:
        """One page: ``{"entries": [...], "next_cursor": str | None}``."""
        return self._call_rpc("list", {"path": path, "recursive": recursive, "limit": limit,
                                       "cursor": cursor})

    def delete(self, path: str) -> None:
        """Delete a file."""
        return self._call_rpc("delete", {"path": path})

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> dict[str, Any]:
        """Move a file or directory; replace an existing file only with ``overwrite``."""
        return self._call_rpc("rename", {"src": src, "dst": dst, "overwrite": overwrite})

    def copy(self, src: str, dst: str, *, overwrite: bool = False) -> dict[str, Any]:
        """Copy a file."""
        return self._call_rpc("copy", {"src": src, "dst": dst, "overwrite": overwrite})

    # -- permissions (ReBAC) -----------------------------------------------------------

    def rebac_create(self, subject: Ref, relation: str, object: Ref,
                     tenant_id: str | None = None, expires_at: Any = None) -> str:
        """Grant ``relation`` on ``object`` to ``subject``; returns the tuple id.

        ``subject``/``object`` are ``(type, id)`` pairs, e.g. ``("user", "alice")`` and
        ``("file", "/tenants/acme")``; ``("group", "eng", "member")`` names a group's
        members. ``expires_at`` (Unix time or ISO-8601) makes the grant time-limited.
        """
        return self._call_rpc("rebac_create", {"subject": subject, "relation": relation,
                                               "object": object, "tenant_id": tenant_id,
                                               "expires_at": expires_at})

    def rebac_delete(self, tuple_id: str | None = None, *, subject: Ref | None = None,
                     relation: str | None = None, object: Ref | None = None,
                     tenant_id: str | None = None) -> bool:
        """Delete a tuple by id (or by subject, relation and object)."""
        return self._call_rpc("rebac_delete", {"tuple_id": tuple_id, "subject": subject,
                                               "relation": relation, "object": object,
                                               "tenant_id": tenant_id})

    def rebac_check(self, subject: Ref, permission: str, object: Ref,
                    tenant_id: str | None = None, at_least: str | None = None) -> bool:
        """Whether ``subject`` has ``permission`` on ``object``."""
        return self._call_rpc("rebac_check", {"subject": subject, "permission": permission,
                                              "object": object, "tenant_id": tenant_id,
                                              "at_least": at_least})

    def rebac_check_batch(self, checks: list[tuple[Ref, str, Ref]],
                          tenant_id: str | None = None) -> list[bool]:
        """:meth:`rebac_check` for each ``(subject, permission, object)``."""
        return self._call_rpc("rebac_check_batch", {"checks": checks, "tenant_id": tenant_id})

    def rebac_expand(self, permission: str, object: Ref,
                     tenant_id: str | None = None) -> dict[str, Any]:
        """The userset tree of ``permission`` on ``object``."""
        return self._call_rpc("rebac_expand", {"permission": permission, "object": object,
                                               "tenant_id": tenant_id})

    def rebac_list_tuples(self, subject: Ref | None = None, relation: str | None = None,
                          object: Ref | None = None, tenant_id: str | None = None,
                          include_expired: bool = False, limit: int | None = None,
                          after: str | None = None) -> list[dict[str, Any]]:
        """Stored tuples matching the filters (dicts with ``tuple_id``, ``object_id``…):
        all of them, or one page of at most ``limit`` (≤ 1,000) after the ``tuple_id``
        ``after``."""
        params = {"subject": subject, "relation": relation, "object": object,
                  "tenant_id": tenant_id, "include_expired": include_expired}
        return self._pages("rebac_list_tuples", params, limit, after,
                           lambda row: str(row["tuple_id"]))

    def rebac_list_objects(self, subject: Ref, permission: str, object_type: str,
                           tenant_id: str | None = None, limit: int | None = None,
                           after: str | None = None) -> list[str]:
        """Ids of ``object_type`` objects on which ``subject`` has ``permission``, sorted:
        all of them, or one page of at most ``limit`` (≤ 1,000) after the id ``after``."""
        params = {"subject": subject, "permission": permission, "object_type": object_type,
                  "tenant_id": tenant_id}
        return self._pages("rebac_list_objects", params, limit, after, str)

    def rebac_list_subjects(self, object: Ref, permission: str, subject_type: str = "user",
                            tenant_id: str | None = None, limit: int | None = None,
                            after: str | None = None) -> list[list[str]]:
        """Subjects of ``subject_type`` that have ``permission`` on ``object``: all, or one
        page of at most ``limit`` (≤ 1,000) after ``after`` (a ``type:id``)."""
        params = {"object": object, "permission": permission, "subject_type": subject_type,
                  "tenant_id": tenant_id}
        return self._pages("rebac_list_subjects", params, limit, after,
                           lambda subject: f"{subject[0]}:{subject[1]}")

    def rebac_write_model(self, model: str, tenant_id: str | None = None) -> dict[str, Any]:
        """Replace the tenant's authorization model (OpenFGA DSL); validated against the
        tenant's existing tuples."""
        return self._call_rpc("rebac_write_model", {"model": model, "tenant_id": tenant_id})

    def rebac_read_model(self, tenant_id: str | None = None) -> dict[str, Any]:
        """The tenant's model in force (``model_id`` ``"default"`` if it never wrote one)."""
        return self._call_rpc("rebac_read_model", {"tenant_id": tenant_id})

    def rebac_revision(self, tenant_id: str | None = None) -> str:
        """Consistency token of a tenant's tuples, for ``rebac_check(at_least=…)``."""
        return self._call_rpc("rebac_revision", {"tenant_id": tenant_id})

    # -- tenants, usage, billing -------------------------------------------------------

    def create_tenant(self, tenant_id: str, name: str | None = None, plan: str = "free",
                      **options: Any) -> dict[str, Any]:
        """Register a tenant and create ``/tenants/<id>`` with ``users/ shared/ uploads/
        exports/``. ``options``: ``status``, ``trial_days``, ``settings`` and limit
        overrides (``max_users``, ``max_storage_gb``, ``max_files``)."""
        return self._call_rpc("create_tenant", {"tenant_id": tenant_id, "name": name,
                                                "plan": plan, **options})

    def get_tenant(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's record with live usage (the ``.tenant.json`` shape)."""
        return self._call_rpc("get_tenant", {"tenant_id": tenant_id})

    def list_tenants(self, plan: str | None = None, status: str | None = None,
                     limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        """A page of tenants: ``{"tenants": [...], "next_cursor": …}``."""
        return self._call_rpc("list_tenants", {"plan": plan, "status": status, "limit": limit,
                                               "cursor": cursor})

    def update_tenant(self, tenant_id: str, **changes: Any) -> dict[str, Any]:
        """Change ``name``, ``plan``, ``status``, ``limits``, ``settings``, ``extra`` or
        ``trial_ends_at``; limits apply from the next operation."""
        return self._call_rpc("update_tenant", {"tenant_id": tenant_id, **changes})

    def get_usage(self, tenant_id: str) -> dict[str, Any]:
        """Usage, limits, utilisation and warnings (≥ 80%)."""
        return self._call_rpc("get_usage", {"tenant_id": tenant_id})

    def billing_preview(self, tenant_id: str, month: str | None = None) -> dict[str, Any]:
        """The bill for ``month`` (``YYYY-MM``, default this month) from metered usage."""
        return self._call_rpc("billing_preview", {"tenant_id": tenant_id, "month": month})

    def tenant_health_metrics(self) -> dict[str, Any]:
        """Fleet totals: tenants by plan and status, users, storage, averages."""
        return self._call_rpc("tenant_health_metrics", {})

    def suspend_tenant(self, tenant_id: str, reason: str = "suspended by the operator"
                       ) -> dict[str, Any]:
        """Refuse every key of the tenant from its next request (data and grants stay)."""
        return self._call_rpc("suspend_tenant", {"tenant_id": tenant_id, "reason": reason})

    def reactivate_tenant(self, tenant_id: str) -> dict[str, Any]:
        """Restore a suspended tenant's access exactly as it was."""
        return self._call_rpc("reactivate_tenant", {"tenant_id": tenant_id})

    def upgrade_tenant(self, tenant_id: str, plan: str) -> dict[str, Any]:
        """Change the tenant's plan; new limits apply at once."""
        return self._call_rpc("upgrade_tenant", {"tenant_id": tenant_id, "plan": plan})

    def cancel_tenant(self, tenant_id: str, reason: str = "cancelled") -> dict[str, Any]:
        """Refuse the tenant's keys for good (then ``delete_tenant``)."""
        return self._call_rpc("cancel_tenant", {"tenant_id": tenant_id, "reason": reason})

    def delete_tenant(self, tenant_id: str, confirm: bool = False) -> dict[str, Any]:
        """Delete a tenant and everything it has; refuses (saying what would go) unless
        ``confirm=True``."""
        return self._call_rpc("delete_tenant", {"tenant_id": tenant_id, "confirm": confirm})

    def export_tenant(self, tenant_id: str, path: str | None = None) -> dict[str, Any]:
        """Archive a tenant (files, manifest with SHA-256s, record, users, grants, shares)
        to ``path`` (default ``/exports/<id>-<YYYYMMDD>.tar.gz``); download it with
        :meth:`read_stream`."""
        return self._call_rpc("export_tenant", {"tenant_id": tenant_id, "path": path})

    def import_tenant(self, archive: str | bytes, tenant_id: str | None = None
                      ) -> dict[str, Any]:
        """Recreate a tenant from an archive (a Nexus path or its bytes), optionally under
        a new id. Users come back without keys."""
        return self._call_rpc("import_tenant", {"archive": archive, "tenant_id": tenant_id})

    # -- audit log ---------------------------------------------------------------------

    def audit_query(self, tenant_id: str, since: Any = None, until: Any = None,
                    user: str | None = None, action: str | None = None, limit: int = 100,
                    cursor: int | None = None) -> dict[str, Any]:
        """A page of a tenant's audit events: ``{"events": [...], "next_cursor": …}``."""
        return self._call_rpc("audit_query", {
            "tenant_id": tenant_id, "since": since, "until": until, "user": user,
            "action": action, "limit": limit, "cursor": cursor})

    def audit_verify(self, tenant_id: str) -> dict[str, Any]:
        """Check the tenant's hash chain: ``{"ok", "events", "problems"}``."""
        return self._call_rpc("audit_verify", {"tenant_id": tenant_id})

    def audit_export(self, tenant_id: str) -> bytes:
        """The tenant's whole audit log as JSON Lines."""
        return self._call_rpc("audit_export", {"tenant_id": tenant_id})

    # -- cross-tenant shares -----------------------------------------------------------

    def create_share(self, path: str, target_tenant_id: str, permission: str = "can_read",
                     expires_in_days: float | None = None,
                     expires_at: Any = None) -> dict[str, Any]:
        """Let every member of ``target_tenant_id`` read (or write) ``path`` until the
        share expires or is revoked; returns the share with its ``share_id``."""
        return self._call_rpc("create_share", {
            "path": path, "target_tenant_id": target_tenant_id, "permission": permission,
            "expires_in_days": expires_in_days, "expires_at": expires_at})

    def list_shares(self, tenant_id: str, direction: str = "outgoing",
                    include_expired: bool = False) -> list[dict[str, Any]]:
        """Shares out of (``outgoing``) or into (``incoming``) a tenant."""
        return self._call_rpc("list_shares", {"tenant_id": tenant_id, "direction": direction,
                                              "include_expired": include_expired})

    def revoke_share(self, share_id: str) -> dict[str, Any]:
        """End a share; its next use is refused."""
        return self._call_rpc("revoke_share", {"share_id": share_id})

    # -- API keys ----------------------------------------------------------------------

    def create_key(self, user_id: str, name: str | None = None, *,
                   tenant_id: str | None = None, is_admin: bool = False,
                   expires_at: Any = None) -> dict[str, Any]:
        """Create an API key for ``user_id`` of ``tenant_id`` (the user is created with
        its first key, within the plan's ``max_users``); ``is_admin=True`` makes a system
        administrator key instead. Returns the key's metadata with ``api_key``, its text,
        which is shown only here. ``name`` (default: the user id) labels it in listings."""
        return self._call_rpc("admin_create_key", {
            "user_id": user_id, "name": user_id if name is None else name,
            "tenant_id": tenant_id, "is_admin": is_admin, "expires_at": expires_at})

    def list_keys(self, tenant_id: str | None = None,
                  user_id: str | None = None) -> list[dict[str, Any]]:
        """Keys' metadata (never their secrets): all, one tenant's, or one user's."""
        return self._call_rpc("admin_list_keys", {"tenant_id": tenant_id, "user_id": user_id})

    def get_key(self, key_id: str) -> dict[str, Any]:
        """One key's metadata: ``key_id``, ``tenant_id``, ``user_id``, ``name``,
        ``is_admin``, ``created_at``, ``expires_at``, ``last_used_at``, ``revoked_at``."""
        return self._call_rpc("admin_get_key", {"key_id": key_id})

    def update_key(self, key_id: str, *, name: str | None = None,
                   expires_at: Any = None) -> dict[str, Any]:
        """Rename a key or change its expiry (Unix time or ISO-8601)."""
        return self._call_rpc("admin_update_key", {"key_id": key_id, "name": name,
                                                   "expires_at": expires_at})

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key: its next request, and every URL it signed, is refused."""
        return self._call_rpc("admin_revoke_key", {"key_id": key_id})
