# tenant_manager.py
import nexus
import os
import json
from datetime import datetime
from typing import Dict, List, Optional

class TenantManager:
    """Manage multi-tenant SaaS tenants"""

    def __init__(self, admin_api_key: str, server_url: str = "http://localhost:8080"):
        self.server_url = server_url
        self.admin = nexus.connect(config={
            "url": server_url,
            "api_key": admin_api_key
        })

    def create_tenant(
        self,
        tenant_id: str,
        name: str,
        plan: str = "free",
        max_users: int = 5,
        max_storage_gb: int = 10
    ) -> Dict:
        """Create a new tenant with isolated workspace"""

        # Create tenant workspace
        tenant_path = f"/tenants/{tenant_id}"
        self.admin.mkdir(tenant_path)

        # Create tenant metadata
        metadata = {
            "tenant_id": tenant_id,
            "name": name,
            "plan": plan,
            "created_at": datetime.now().isoformat(),
            "status": "active",
            "limits": {
                "max_users": max_users,
                "max_storage_gb": max_storage_gb,
                "max_files": 10000 if plan == "free" else None
            },
            "usage": {
                "users": 0,
                "storage_gb": 0,
                "files": 0
            }
        }

        # Save metadata
        self.admin.write(
            f"{tenant_path}/.tenant.json",
            json.dumps(metadata, indent=2).encode()
        )

        # Create standard tenant directories
        for subdir in ["users", "shared", "uploads", "exports"]:
            self.admin.mkdir(f"{tenant_path}/{subdir}")

        print(f"✅ Created tenant: {name} ({tenant_id})")
        print(f"   Plan: {plan}, Max Users: {max_users}, Storage: {max_storage_gb}GB")

        return metadata

    def create_tenant_admin(self, tenant_id: str, username: str, email: str) -> Dict:
        """Create admin user for a tenant"""

        # Create user account and API key
        # Note: In Nexus, users are created implicitly when their first API key is generated
        result = self.admin._call_rpc("admin_create_key", {
            "user_id": username,
            "name": f"{username} (Tenant Admin)",
            "subject_type": "user",
            "tenant_id": tenant_id,
            "is_admin": False,  # Tenant admin, not system admin
        })

        api_key = result["api_key"]

        # Grant tenant admin full access to tenant workspace
        tenant_path = f"/tenants/{tenant_id}"
        self.admin.rebac_create(
            subject=("user", username),
            relation="owner",
            object=("file", tenant_path),
            tenant_id=tenant_id
        )

        print(f"✅ Created tenant admin: {username}")
        print(f"   Tenant: {tenant_id}, Email: {email}")

        return {
            "username": username,
            "email": email,
            "tenant_id": tenant_id,
            "api_key": api_key,
            "role": "tenant_admin"
        }

    def add_tenant_user(
        self,
        tenant_id: str,
        username: str,
        email: str,
        role: str = "user"
    ) -> Dict:
        """Add a user to a tenant"""

        # Create user account and API key
        result = self.admin._call_rpc("admin_create_key", {
            "user_id": username,
            "name": username,
            "subject_type": "user",
            "tenant_id": tenant_id,
            "is_admin": False,
        })

        api_key = result["api_key"]

        # Grant appropriate permissions based on role
        tenant_path = f"/tenants/{tenant_id}"

        if role == "admin":
            relation = "owner"
        elif role == "editor":
            relation = "can_write"
        else:  # role == "user"
            relation = "can_read"

        self.admin.rebac_create(
            subject=("user", username),
            relation=relation,
            object=("file", f"{tenant_path}/shared"),
            tenant_id=tenant_id
        )

        # Grant user access to their personal folder
        user_folder = f"{tenant_path}/users/{username}"
        self.admin.mkdir(user_folder)
        self.admin.rebac_create(
            subject=("user", username),
            relation="owner",
            object=("file", user_folder),
            tenant_id=tenant_id
        )

        print(f"✅ Added user: {username} (role: {role})")

        # Update tenant user count
        self._update_tenant_usage(tenant_id, users_delta=1)

        return {
            "username": username,
            "email": email,
            "tenant_id": tenant_id,
            "role": role,
            "api_key": api_key
        }

    def get_tenant_info(self, tenant_id: str) -> Dict:
        """Get tenant information and usage"""
        metadata = json.loads(
            self.admin.read(f"/tenants/{tenant_id}/.tenant.json").decode()
        )
        return metadata

    def list_tenants(self) -> List[Dict]:
        """List all tenants"""
        tenant_dirs = self.admin.list("/tenants", recursive=False)

        tenants = []
        for tenant_dir in tenant_dirs:
            tenant_id = tenant_dir['path'].split('/')[-1]
            try:
                info = self.get_tenant_info(tenant_id)
                tenants.append(info)
            except:
                pass

        return tenants

    def _update_tenant_usage(self, tenant_id: str, **kwargs):
        """Update tenant usage metrics"""
        metadata = self.get_tenant_info(tenant_id)

        for key, value in kwargs.items():
            if key.endswith('_delta'):
                metric = key.replace('_delta', '')
                if metric in metadata['usage']:
                    metadata['usage'][metric] += value

        self.admin.write(
            f"/tenants/{tenant_id}/.tenant.json",
            json.dumps(metadata, indent=2).encode()
        )

    def check_quota(self, tenant_id: str, resource: str, amount: int = 1) -> bool:
        """Check if tenant is within quota limits"""
        metadata = self.get_tenant_info(tenant_id)

        limits = metadata['limits']
        usage = metadata['usage']

        if resource == 'users':
            return usage['users'] + amount <= limits['max_users']
        elif resource == 'storage_gb':
            return usage['storage_gb'] + amount <= limits['max_storage_gb']
        elif resource == 'files':
            max_files = limits.get('max_files')
            if max_files is None:
                return True
            return usage['files'] + amount <= max_files

        return True

# Demo usage
if __name__ == "__main__":
    # Admin API key (replace with actual key)
    ADMIN_KEY = os.environ["NEXUS_ADMIN_KEY"]

    # Initialize tenant manager
    tm = TenantManager(ADMIN_KEY, os.environ.get("NEXUS_URL", "http://localhost:8080"))

    # Create tenants
    acme_tenant = tm.create_tenant(
        tenant_id="acme",
        name="Acme Corporation",
        plan="enterprise",
        max_users=100,
        max_storage_gb=1000
    )

    beta_tenant = tm.create_tenant(
        tenant_id="beta",
        name="Beta Inc",
        plan="pro",
        max_users=50,
        max_storage_gb=500
    )

    startup_tenant = tm.create_tenant(
        tenant_id="startup",
        name="Startup Co",
        plan="free",
        max_users=5,
        max_storage_gb=10
    )

    # Create tenant admins
    acme_admin = tm.create_tenant_admin(
        tenant_id="acme",
        username="alice",
        email="alice@acme.com"
    )

    beta_admin = tm.create_tenant_admin(
        tenant_id="beta",
        username="bob",
        email="bob@beta.com"
    )

    # Add users to tenants
    tm.add_tenant_user(
        tenant_id="acme",
        username="charlie",
        email="charlie@acme.com",
        role="editor"
    )

    tm.add_tenant_user(
        tenant_id="acme",
        username="diana",
        email="diana@acme.com",
        role="user"
    )

    # List all tenants
    print("\n📋 All Tenants:")
    for tenant in tm.list_tenants():
        print(f"  - {tenant['name']} ({tenant['tenant_id']})")
        print(f"    Plan: {tenant['plan']}, Users: {tenant['usage']['users']}/{tenant['limits']['max_users']}")

    # --- Addition (not in the guide; issue 7): hand the keys Step 3 needs on. ---
    keys_path = os.environ.get("NEXUS_KEYS_FILE")
    if keys_path:
        with open(os.open(keys_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump({"alice": acme_admin["api_key"], "bob": beta_admin["api_key"]}, f)
        print(f"\n🔑 Saved Alice's and Bob's API keys to {keys_path}")
    # --- end of addition ---
