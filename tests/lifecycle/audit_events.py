"""Reading a whole audit log through the public API, page by page."""

from __future__ import annotations

from nexus.client import NexusClient


def all_events(admin: NexusClient, tenant: str, **filters) -> list[dict]:
    """Every event of ``tenant``'s log matching ``filters`` (``audit_query``'s)."""
    out, cursor = [], None
    while True:
        page = admin.audit_query(tenant, limit=500, cursor=cursor, **filters)
        out += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out
