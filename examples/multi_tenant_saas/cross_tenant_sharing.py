# cross_tenant_sharing.py
import nexus
import os
import json
from datetime import datetime, timedelta
from typing import Dict, List

class CrossTenantSharing:
    """Manage secure cross-tenant data sharing"""

    def __init__(self, admin_api_key: str):
        self.admin = nexus.connect(config={
            "url": os.environ.get("NEXUS_URL", "http://localhost:8080"),
            "api_key": admin_api_key
        })

    def create_shared_link(
        self,
        tenant_id: str,
        file_path: str,
        target_tenant_id: str,
        permission: str = "can_read",
        expires_in_days: int = 7
    ) -> Dict:
        """Create a secure cross-tenant share"""

        # Create share metadata
        share_id = f"share_{datetime.now().timestamp()}"
        expires_at = datetime.now() + timedelta(days=expires_in_days)

        share_metadata = {
            "share_id": share_id,
            "source_tenant": tenant_id,
            "target_tenant": target_tenant_id,
            "file_path": file_path,
            "permission": permission,
            "created_at": datetime.now().isoformat(),
            "expires_at": expires_at.isoformat(),
            "status": "active"
        }

        # Grant temporary cross-tenant permission
        # Create a symlink or reference in target tenant's shared folder
        target_path = f"/tenants/{target_tenant_id}/shared/from-{tenant_id}"
        self.admin.mkdir(target_path)

        # Copy file to shared location (or create reference)
        shared_file_path = f"{target_path}/{file_path.split('/')[-1]}"

        # Grant target tenant read access
        # Note: Grant to all users in target tenant by using a group or specific users
        # For simplicity, we'll create a share that specific users can access
        self.admin.rebac_create(
            subject=("tenant", target_tenant_id),
            relation=permission,
            object=("file", shared_file_path),
            tenant_id=tenant_id
        )

        # Store share metadata
        self.admin.write(
            f"{target_path}/.share-{share_id}.json",
            json.dumps(share_metadata, indent=2).encode()
        )

        print(f"✅ Created cross-tenant share: {share_id}")
        print(f"   {tenant_id} → {target_tenant_id}")
        print(f"   File: {file_path}")
        print(f"   Permission: {permission}")
        print(f"   Expires: {expires_at.date()}")

        return share_metadata

    def revoke_share(self, share_id: str):
        """Revoke a cross-tenant share"""
        # Find and delete share
        # Remove permissions
        # Clean up shared file
        print(f"✅ Revoked share: {share_id}")

    def list_active_shares(self, tenant_id: str) -> List[Dict]:
        """List all active shares for a tenant"""
        # Implementation would scan for share metadata
        pass

# Usage example
sharing = CrossTenantSharing(os.environ["NEXUS_ADMIN_KEY"])

# Acme shares a file with Beta (partnership)
share = sharing.create_shared_link(
    tenant_id="acme",
    file_path="/tenants/acme/shared/partnership-proposal.pdf",
    target_tenant_id="beta",
    permission="can_read",
    expires_in_days=30
)

# --- Addition (not in the guide; issue 7) -------------------------------------------
# The code above writes share metadata and a grant inside Beta's own folder, but it
# shares nothing of Acme's (and partnership-proposal.pdf never exists). The server's
# create_share is the real thing: Beta's members may read Acme's file until it expires
# or is revoked.
sharing.admin.write(share["file_path"], b"%PDF-1.4 Acme x Beta partnership proposal\n")
real_share = sharing.admin.create_share(
    share["file_path"], target_tenant_id="beta", permission="can_read", expires_in_days=30
)
print(f"✅ Created real share: {real_share['share_id']}")
print(f"   {real_share['source_tenant']} → {real_share['target_tenant']}: "
      f"{real_share['path']} ({real_share['permission']}, expires {real_share['expires_at']})")
# --- end of addition ---
