# tenant_isolation_demo.py
import nexus
import os

# Acme tenant user (Alice)
alice = nexus.connect(config={
    "url": os.environ.get("NEXUS_URL", "http://localhost:8080"),
    "api_key": os.environ["ALICE_KEY"]
})

# Beta tenant user (Bob)
bob = nexus.connect(config={
    "url": os.environ.get("NEXUS_URL", "http://localhost:8080"),
    "api_key": os.environ["BOB_KEY"]
})

# Alice creates files in Acme tenant workspace
alice.write(
    "/tenants/acme/shared/project-plan.md",
    b"""# Acme Project Plan

## Q1 Goals
- Launch new product
- Expand to EMEA
- Hire 10 engineers

CONFIDENTIAL - Acme Corporation
"""
)

print("✅ Alice created Acme project plan")

# Alice creates personal files
alice.write(
    "/tenants/acme/users/alice/notes.md",
    b"Personal notes for Alice - Acme internal"
)

print("✅ Alice created personal notes")

# Bob creates files in Beta tenant workspace
bob.write(
    "/tenants/beta/shared/roadmap.md",
    b"""# Beta Product Roadmap

## Features
- AI integration
- Mobile app
- API v2

CONFIDENTIAL - Beta Inc
"""
)

print("✅ Bob created Beta roadmap")

# Verify isolation: Bob CANNOT access Acme files
print("\n🔒 Testing Tenant Isolation:")

try:
    # Bob tries to read Acme files
    acme_file = bob.read("/tenants/acme/shared/project-plan.md")
    print("SECURITY BREACH: Bob accessed Acme files!")
except nexus.NexusPermissionError:
    print("✅ Isolation working: Bob cannot access Acme files")

try:
    # Alice tries to read Beta files
    beta_file = alice.read("/tenants/beta/shared/roadmap.md")
    print("SECURITY BREACH: Alice accessed Beta files!")
except nexus.NexusPermissionError:
    print("✅ Isolation working: Alice cannot access Beta files")

# Verify: Users can only see their tenant's files
alice_files = alice.list("/tenants/acme", recursive=True)
print(f"\nAlice can see {len(alice_files)} Acme files:")
for f in alice_files[:5]:
    print(f"  - {f['path']}")

bob_files = bob.list("/tenants/beta", recursive=True)
print(f"\nBob can see {len(bob_files)} Beta files:")
for f in bob_files[:5]:
    print(f"  - {f['path']}")

print("\n✅ Complete tenant isolation verified!")
