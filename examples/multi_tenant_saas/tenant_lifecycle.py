# tenant_lifecycle.py
import nexus
import os
import json
from datetime import datetime
from typing import Dict

class TenantLifecycle:
    """Manage complete tenant lifecycle"""

    def __init__(self, admin_api_key: str):
        self.admin = nexus.connect(config={
            "url": os.environ.get("NEXUS_URL", "http://localhost:8080"),
            "api_key": admin_api_key
        })

    def suspend_tenant(self, tenant_id: str, reason: str):
        """Suspend a tenant (maintain data, block access)"""

        # Update tenant status
        metadata = json.loads(
            self.admin.read(f"/tenants/{tenant_id}/.tenant.json").decode()
        )

        metadata['status'] = 'suspended'
        metadata['suspended_at'] = datetime.now().isoformat()
        metadata['suspension_reason'] = reason

        self.admin.write(
            f"/tenants/{tenant_id}/.tenant.json",
            json.dumps(metadata, indent=2).encode()
        )

        # Revoke all user access (but keep data)
        users = self._get_tenant_users(tenant_id)
        for user in users:
            self._revoke_user_access(user, tenant_id)

        print(f" Suspended tenant: {tenant_id}")
        print(f"   Reason: {reason}")

    def reactivate_tenant(self, tenant_id: str):
        """Reactivate a suspended tenant"""

        metadata = json.loads(
            self.admin.read(f"/tenants/{tenant_id}/.tenant.json").decode()
        )

        metadata['status'] = 'active'
        metadata['reactivated_at'] = datetime.now().isoformat()

        self.admin.write(
            f"/tenants/{tenant_id}/.tenant.json",
            json.dumps(metadata, indent=2).encode()
        )

        # Restore user access
        users = self._get_tenant_users(tenant_id)
        for user in users:
            self._restore_user_access(user, tenant_id)

        print(f"▶ Reactivated tenant: {tenant_id}")

    def export_tenant_data(self, tenant_id: str) -> str:
        """Export all tenant data for backup or migration"""

        tenant_path = f"/tenants/{tenant_id}"
        export_path = f"/exports/{tenant_id}-{datetime.now().strftime('%Y%m%d')}.tar.gz"

        # In production, this would create a compressed archive
        # For demo, we'll list what would be exported

        files = self.admin.list(tenant_path, recursive=True)

        print(f"📦 Exporting tenant data: {tenant_id}")
        print(f"   Total files: {len(files)}")
        print(f"   Export path: {export_path}")

        return export_path

    def delete_tenant(self, tenant_id: str, confirm: bool = False):
        """Permanently delete a tenant and all data"""

        if not confirm:
            print("⚠ DANGER: This will permanently delete all tenant data!")
            print("   Call with confirm=True to proceed")
            return

        # Delete all tenant data
        tenant_path = f"/tenants/{tenant_id}"

        # Remove all permissions
        # Delete all user accounts
        # Delete tenant workspace

        self.admin.rmdir(tenant_path, recursive=True)

        print(f"🗑 Deleted tenant: {tenant_id}")
        print("   All data permanently removed")

    def _get_tenant_users(self, tenant_id: str) -> list:
        """Get all users in a tenant"""
        # Implementation would query user database
        return []

    def _revoke_user_access(self, user: str, tenant_id: str):
        """Revoke user access to tenant"""
        pass

    def _restore_user_access(self, user: str, tenant_id: str):
        """Restore user access to tenant"""
        pass

# Usage
lifecycle = TenantLifecycle(os.environ["NEXUS_ADMIN_KEY"])

# Suspend tenant for non-payment
lifecycle.suspend_tenant("startup", "Payment overdue")

# Export data before deletion
lifecycle.export_tenant_data("startup")

# --- Addition (not in the guide; issue 7) -------------------------------------------
# export_tenant_data above only prints where an archive would go: deleting now would lose
# the data. The server's export_tenant writes that archive (every file with its SHA-256,
# the record, users, grants and shares) before the deletion below.
archive = lifecycle.admin.export_tenant("startup")
# The guide's "Total files" counts every entry, directories too; the archive says which.
print(f"📦 Wrote {archive['path']}: {archive['files'] + archive['directories']} entries "
      f"({archive['files']} files of {archive['bytes']} bytes, {archive['directories']} "
      f"directories), {archive['users']} users, {archive['tuples']} grants")
# --- end of addition ---

# Delete tenant (requires confirmation)
lifecycle.delete_tenant("startup", confirm=True)
