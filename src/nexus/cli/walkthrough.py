"""The embedded walkthrough behind ``nexus demo``."""

from __future__ import annotations

from nexus.cli.render import console
from nexus.client import NexusClient

__all__ = ["run_walkthrough"]


def run_walkthrough(client: NexusClient) -> None:
    """Create two tenants' workspaces, write, append, list and read back."""
    for tenant in ("acme", "beta"):
        for sub in ("users", "shared", "uploads", "exports"):
            client.mkdir(f"/tenants/{tenant}/{sub}")
    console.print("✅ Created workspaces /tenants/acme and /tenants/beta")
    info = client.write("/tenants/acme/shared/project-plan.md", b"# Acme Project Plan\n")
    console.print(f"✅ Wrote {info['path']} ({info['size']} bytes, etag {info['etag'][:12]}…)")
    for n in range(3):
        client.append("/tenants/acme/shared/log.txt", f"event {n}\n".encode())
    console.print("✅ Appended 3 lines to /tenants/acme/shared/log.txt")
    entries = client.list("/tenants/acme", recursive=True)
    console.print(f"📋 /tenants/acme holds {len(entries)} entries:")
    for entry in entries:
        console.print(f"   {entry['type']:<9} {entry['path']}")
    console.print(client.read("/tenants/acme/shared/log.txt").decode().rstrip())
