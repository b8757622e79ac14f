# troubleshooting.py
# The guide's runnable Troubleshooting / Best Practices snippets, verbatim between the
# markers, with the glue they assume (nx, alice_tenant_id). See README.md for the others.
import nexus
import os
import json
from datetime import datetime

nx = nexus.connect(config={
    "url": os.environ.get("NEXUS_URL", "http://localhost:8080"),
    "api_key": os.environ["NEXUS_ADMIN_KEY"]
})
alice_tenant_id = "acme"

# --- Troubleshooting: "Issue: Cross-Tenant Data Leakage" (verbatim) ---
# Verify permissions are properly scoped
permissions = nx.rebac_list_tuples(
    subject=("user", "alice")
)

# Ensure all permissions start with /tenants/{tenant_id}
for perm in permissions:
    if not perm['object_id'].startswith(f"/tenants/{alice_tenant_id}"):
        print(f"⚠ Cross-tenant permission detected: {perm}")
# --- end of snippet ---
print(f"✅ Checked {len(permissions)} of alice's permissions: all under /tenants/{alice_tenant_id}"
      if all(p['object_id'].startswith(f"/tenants/{alice_tenant_id}") for p in permissions)
      else "⚠ Cross-tenant permissions found (see above)")

# --- Best Practices: "2. Implement Audit Logging" (verbatim) ---
def audit_log(tenant_id, user, action, resource):
    log_entry = {
        "timestamp": datetime.now().isoformat(),
        "tenant_id": tenant_id,
        "user": user,
        "action": action,
        "resource": resource
    }

    nx.append(
        f"/tenants/{tenant_id}/.audit/log.jsonl",
        (json.dumps(log_entry) + '\n').encode()
    )
# --- end of snippet ---
audit_log(alice_tenant_id, "alice", "read", "/tenants/acme/shared/project-plan.md")
audit_log(alice_tenant_id, "alice", "share", "/tenants/acme/shared/partnership-proposal.pdf")
print(f"\n📝 /tenants/{alice_tenant_id}/.audit/log.jsonl:")
print(nx.read(f"/tenants/{alice_tenant_id}/.audit/log.jsonl").decode(), end="")
