#!/usr/bin/env python3
"""
Production Multi-Tenant SaaS Platform
Complete implementation with isolation, quotas, and lifecycle management
"""
import nexus
import os
import json
from datetime import datetime, timedelta
from typing import Dict, List, Optional
from enum import Enum

class TenantPlan(Enum):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"

class TenantStatus(Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TRIAL = "trial"
    CANCELLED = "cancelled"

class MultiTenantSaaS:
    """Complete multi-tenant SaaS platform"""

    def __init__(self, server_url: str, admin_api_key: str):
        self.server_url = server_url
        self.admin = nexus.connect(config={
            "url": server_url,
            "api_key": admin_api_key
        })

        # Plan configurations
        self.plan_limits = {
            TenantPlan.FREE: {
                "max_users": 5,
                "max_storage_gb": 10,
                "max_files": 1000,
                "features": ["basic_storage", "basic_sharing"]
            },
            TenantPlan.PRO: {
                "max_users": 50,
                "max_storage_gb": 500,
                "max_files": 50000,
                "features": ["advanced_storage", "advanced_sharing", "api_access"]
            },
            TenantPlan.ENTERPRISE: {
                "max_users": None,  # Unlimited
                "max_storage_gb": None,  # Unlimited
                "max_files": None,  # Unlimited
                "features": ["all", "custom_integrations", "dedicated_support"]
            }
        }

    def onboard_tenant(
        self,
        tenant_id: str,
        name: str,
        admin_email: str,
        plan: TenantPlan = TenantPlan.FREE
    ) -> Dict:
        """Complete tenant onboarding workflow"""

        print(f"\n🚀 Starting tenant onboarding: {name}")

        # Step 1: Create tenant workspace
        tenant_path = f"/tenants/{tenant_id}"
        self.admin.mkdir(tenant_path)
        print(f"  ✅ Created tenant workspace")

        # Step 2: Set up directory structure
        for subdir in ["users", "shared", "uploads", "templates", "exports"]:
            self.admin.mkdir(f"{tenant_path}/{subdir}")
        print(f"  ✅ Created directory structure")

        # Step 3: Create tenant metadata
        limits = self.plan_limits[plan]
        metadata = {
            "tenant_id": tenant_id,
            "name": name,
            "plan": plan.value,
            "status": TenantStatus.TRIAL.value,
            "created_at": datetime.now().isoformat(),
            "trial_ends_at": (datetime.now() + timedelta(days=14)).isoformat(),
            "limits": limits,
            "usage": {
                "users": 0,
                "storage_gb": 0,
                "files": 0,
                "api_calls": 0
            },
            "settings": {
                "allow_public_sharing": False,
                "enforce_2fa": False,
                "data_retention_days": 90
            }
        }

        self.admin.write(
            f"{tenant_path}/.tenant.json",
            json.dumps(metadata, indent=2).encode()
        )
        print(f"  ✅ Saved tenant metadata")

        # Step 4: Create admin user
        admin_username = f"{tenant_id}_admin"
        result = self.admin._call_rpc("admin_create_key", {
            "user_id": admin_username,
            "name": f"{name} Admin",
            "subject_type": "user",
            "tenant_id": tenant_id,
            "is_admin": False,
        })

        api_key = result["api_key"]

        # Grant admin full access
        self.admin.rebac_create(
            subject=("user", admin_username),
            relation="owner",
            object=("file", tenant_path),
            tenant_id=tenant_id
        )
        print(f"  ✅ Created admin user: {admin_email}")

        # Step 5: Copy templates
        self._copy_welcome_templates(tenant_id)
        print(f"  ✅ Copied welcome templates")

        # Step 6: Send welcome email (simulated)
        self._send_welcome_email(name, admin_email, api_key)
        print(f"  ✅ Sent welcome email")

        print(f"\n✅ Tenant onboarding complete!")
        print(f"   Tenant ID: {tenant_id}")
        print(f"   Plan: {plan.value}")
        print(f"   Trial ends: {metadata['trial_ends_at']}")

        return {
            "tenant_id": tenant_id,
            "admin_username": admin_username,
            "api_key": api_key,
            "metadata": metadata
        }

    def _copy_welcome_templates(self, tenant_id: str):
        """Copy welcome templates to new tenant"""
        welcome_doc = b"""# Welcome to Your Workspace!

## Getting Started

1. Invite your team members
2. Upload your files
3. Start collaborating

## Features Available

- Secure file storage
- Real-time collaboration
- Version history
- Access control

Need help? Contact support@example.com
"""
        self.admin.write(
            f"/tenants/{tenant_id}/shared/Welcome.md",
            welcome_doc
        )

    def _send_welcome_email(self, tenant_name: str, email: str, api_key: str):
        """Send welcome email (simulated)"""
        # In production: use SendGrid, AWS SES, etc.
        print(f"\n📧 Email to {email}:")
        print(f"   Subject: Welcome to {tenant_name}!")
        print(f"   API Key: {api_key[:20]}...")

    def upgrade_tenant(self, tenant_id: str, new_plan: TenantPlan) -> Dict:
        """Upgrade tenant to a new plan"""

        metadata = self._get_tenant_metadata(tenant_id)

        old_plan = TenantPlan(metadata['plan'])
        metadata['plan'] = new_plan.value
        metadata['limits'] = self.plan_limits[new_plan]
        metadata['upgraded_at'] = datetime.now().isoformat()
        metadata['status'] = TenantStatus.ACTIVE.value

        self._save_tenant_metadata(tenant_id, metadata)

        print(f"⬆ Upgraded {tenant_id}: {old_plan.value} → {new_plan.value}")

        return metadata

    def monitor_usage(self, tenant_id: str) -> Dict:
        """Monitor and report tenant usage"""

        metadata = self._get_tenant_metadata(tenant_id)

        usage = metadata['usage']
        limits = metadata['limits']

        # Calculate utilization percentages
        utilization = {}

        for resource in ['users', 'storage_gb', 'files']:
            limit = limits.get(f'max_{resource}')
            if limit is None:
                utilization[resource] = 0  # Unlimited
            else:
                current = usage.get(resource, 0)
                utilization[resource] = (current / limit * 100) if limit > 0 else 0

        # Check for quota violations
        warnings = []
        if utilization.get('users', 0) > 80:
            warnings.append(f"Users at {utilization['users']:.0f}% of limit")
        if utilization.get('storage_gb', 0) > 80:
            warnings.append(f"Storage at {utilization['storage_gb']:.0f}% of limit")

        return {
            "tenant_id": tenant_id,
            "usage": usage,
            "limits": limits,
            "utilization": utilization,
            "warnings": warnings
        }

    def _get_tenant_metadata(self, tenant_id: str) -> Dict:
        """Get tenant metadata"""
        return json.loads(
            self.admin.read(f"/tenants/{tenant_id}/.tenant.json").decode()
        )

    def _save_tenant_metadata(self, tenant_id: str, metadata: Dict):
        """Save tenant metadata"""
        self.admin.write(
            f"/tenants/{tenant_id}/.tenant.json",
            json.dumps(metadata, indent=2).encode()
        )

def main():
    """Demo the multi-tenant SaaS platform"""

    SERVER_URL = os.environ.get("NEXUS_URL", "http://localhost:8080")
    ADMIN_KEY = os.environ["NEXUS_ADMIN_KEY"]  # Replace with actual admin key

    saas = MultiTenantSaaS(SERVER_URL, ADMIN_KEY)
    SUFFIX = os.environ.get("NEXUS_TENANT_SUFFIX", "")  # e.g. "-prod" after Steps 2-7

    # Onboard new tenants
    acme = saas.onboard_tenant(
        tenant_id="acme" + SUFFIX,
        name="Acme Corporation",
        admin_email="admin@acme.com",
        plan=TenantPlan.ENTERPRISE
    )

    beta = saas.onboard_tenant(
        tenant_id="beta" + SUFFIX,
        name="Beta Inc",
        admin_email="admin@beta.com",
        plan=TenantPlan.PRO
    )

    startup = saas.onboard_tenant(
        tenant_id="startup" + SUFFIX,
        name="Startup Co",
        admin_email="admin@startup.com",
        plan=TenantPlan.FREE
    )

    # Upgrade a tenant
    saas.upgrade_tenant("startup" + SUFFIX, TenantPlan.PRO)

    # Monitor usage
    usage = saas.monitor_usage("acme" + SUFFIX)
    print(f"\n📊 Acme Usage:")
    print(f"  Users: {usage['usage']['users']}")
    print(f"  Storage: {usage['usage']['storage_gb']}GB")
    if usage['warnings']:
        print(f"  ⚠ Warnings: {', '.join(usage['warnings'])}")

if __name__ == "__main__":
    main()
