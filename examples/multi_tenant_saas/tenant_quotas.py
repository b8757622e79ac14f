# tenant_quotas.py
import nexus
import os
import json
from typing import Dict

class TenantQuotaManager:
    """Manage tenant quotas and usage tracking"""

    def __init__(self, admin_api_key: str):
        self.admin = nexus.connect(config={
            "url": os.environ.get("NEXUS_URL", "http://localhost:8080"),
            "api_key": admin_api_key
        })

    def check_and_enforce_quota(
        self,
        tenant_id: str,
        operation: str,
        amount: int = 1
    ) -> bool:
        """Check quota before allowing operation"""

        # Get tenant metadata
        metadata = json.loads(
            self.admin.read(f"/tenants/{tenant_id}/.tenant.json").decode()
        )

        limits = metadata['limits']
        usage = metadata['usage']

        # Check specific quota
        if operation == "create_user":
            if usage['users'] >= limits['max_users']:
                raise QuotaExceededError(
                    f"Tenant {tenant_id} has reached user limit: {limits['max_users']}"
                )

        elif operation == "upload_file":
            if limits.get('max_files') and usage['files'] >= limits['max_files']:
                raise QuotaExceededError(
                    f"Tenant {tenant_id} has reached file limit: {limits['max_files']}"
                )

        elif operation == "storage":
            if usage['storage_gb'] + (amount / 1024**3) > limits['max_storage_gb']:
                raise QuotaExceededError(
                    f"Tenant {tenant_id} would exceed storage limit: {limits['max_storage_gb']}GB"
                )

        return True

    def update_usage(self, tenant_id: str, metric: str, delta: float):
        """Update tenant usage metrics"""
        metadata = json.loads(
            self.admin.read(f"/tenants/{tenant_id}/.tenant.json").decode()
        )

        metadata['usage'][metric] += delta

        self.admin.write(
            f"/tenants/{tenant_id}/.tenant.json",
            json.dumps(metadata, indent=2).encode()
        )

    def get_usage_report(self, tenant_id: str) -> Dict:
        """Generate usage report for billing"""
        metadata = json.loads(
            self.admin.read(f"/tenants/{tenant_id}/.tenant.json").decode()
        )

        usage = metadata['usage']
        limits = metadata['limits']

        return {
            "tenant_id": tenant_id,
            "plan": metadata['plan'],
            "usage": usage,
            "limits": limits,
            "utilization": {
                "users": f"{usage['users']}/{limits['max_users']} ({usage['users']/limits['max_users']*100:.1f}%)",
                "storage": f"{usage['storage_gb']:.2f}/{limits['max_storage_gb']}GB ({usage['storage_gb']/limits['max_storage_gb']*100:.1f}%)",
            }
        }

    def calculate_overage_charges(self, tenant_id: str) -> Dict:
        """Calculate overage charges for billing"""
        report = self.get_usage_report(tenant_id)

        charges = {
            "base_charge": 0,
            "overage_charges": {},
            "total": 0
        }

        # Example pricing
        plan_prices = {
            "free": 0,
            "pro": 99,
            "enterprise": 499
        }

        charges["base_charge"] = plan_prices.get(report['plan'], 0)

        # Calculate overages (simplified)
        usage = report['usage']
        limits = report['limits']

        if usage['users'] > limits['max_users']:
            overage = usage['users'] - limits['max_users']
            charges["overage_charges"]["users"] = overage * 10  # $10 per extra user

        if usage['storage_gb'] > limits['max_storage_gb']:
            overage = usage['storage_gb'] - limits['max_storage_gb']
            charges["overage_charges"]["storage"] = overage * 0.50  # $0.50 per extra GB

        charges["total"] = charges["base_charge"] + sum(charges["overage_charges"].values())

        return charges

QuotaExceededError = nexus.QuotaExceededError  # the server's error: one except catches both

# Usage
quota_mgr = TenantQuotaManager(os.environ["NEXUS_ADMIN_KEY"])

# Check quota before operation
try:
    quota_mgr.check_and_enforce_quota("acme", "create_user")
    # Proceed with user creation...
    quota_mgr.update_usage("acme", "users", 1)
except QuotaExceededError as e:
    print(f"{e}")

# Generate usage report
report = quota_mgr.get_usage_report("acme")
print(f"\n📊 Acme Usage Report:")
print(f"  Users: {report['utilization']['users']}")
print(f"  Storage: {report['utilization']['storage']}")

# Calculate charges
charges = quota_mgr.calculate_overage_charges("acme")
print(f"\n💰 Acme Billing:")
print(f"  Base: ${charges['base_charge']}")
if charges['overage_charges']:
    print(f"  Overages: ${sum(charges['overage_charges'].values()):.2f}")
print(f"  Total: ${charges['total']:.2f}")
