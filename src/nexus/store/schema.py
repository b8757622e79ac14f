"""Every table of the metadata store, declared once on one ``MetaData``.

Rows that belong to a tenant carry ``tenant_id`` first in their primary key and in every
index, so each query is confined to one partition by construction. Paths use the binary
("C") collation on PostgreSQL so that range scans over a subtree (``path > 'p/'`` and
``path < 'p0'``) select exactly the rows under ``p``, as they do on SQLite.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["api_keys", "authz_models", "authz_revisions", "files", "metadata", "rebac_tuples",
           "audit_events", "audit_heads", "cache_events", "deployment", "rate_buckets",
           "shares", "tenant_usage", "tenants", "usage_daily", "users"]

metadata = MetaData()

PathText = Text().with_variant(Text(collation="C"), "postgresql")

#: Tenant records: plan, lifecycle status, limit overrides, settings and free-form fields.
tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(63).with_variant(String(63, collation="C"), "postgresql"),
           primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("plan", String(32), nullable=False, default="free"),
    Column("status", String(16), nullable=False, default="active"),
    Column("status_reason", String(255), nullable=True),
    Column("limit_overrides", JSON, nullable=False, default=dict),
    Column("settings", JSON, nullable=False, default=dict),
    Column("extra", JSON, nullable=False, default=dict),
    Column("trial_ends_at", Float, nullable=True),
    Column("updated_at", Float, nullable=True),
    # One life of this name (nexus.service.incarnations): references bind to it.
    Column("incarnation", String(32), nullable=False),
)
Index("ix_tenants_plan", tenants.c.plan, tenants.c.tenant_id)
Index("ix_tenants_status", tenants.c.status, tenants.c.tenant_id)

#: Live usage counters, changed in the same transaction as the operation they count.
tenant_usage = Table(
    "tenant_usage",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("storage_bytes", BigInteger, nullable=False, default=0),
    Column("files", BigInteger, nullable=False, default=0),
    Column("users", BigInteger, nullable=False, default=0),
    Column("api_calls", BigInteger, nullable=False, default=0),
)

#: One row per tenant and UTC day: peaks and totals for billing.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD (UTC)
    Column("storage_peak_bytes", BigInteger, nullable=False, default=0),
    Column("files_peak", BigInteger, nullable=False, default=0),
    Column("users_peak", BigInteger, nullable=False, default=0),
    Column("api_calls", BigInteger, nullable=False, default=0),
)

#: One row per file or directory. ``tenant_id`` is the partition of ``path``
#: (see ``nexus.paths.partition_of``); ``digest`` names the content blob of a file.
files = Table(
    "files",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("path", PathText, primary_key=True),
    Column("parent", PathText, nullable=False),
    Column("kind", String(9), nullable=False),  # "file" | "directory"
    Column("size", BigInteger, nullable=False, default=0),
    Column("digest", String(64), nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
    Column("modified_at", Float, nullable=False),
)
Index("ix_files_tenant_parent_path", files.c.tenant_id, files.c.parent, files.c.path)
Index("ix_files_tenant_digest", files.c.tenant_id, files.c.digest)

#: Relation tuples ``object#relation@subject`` of one tenant's store. ``subject_relation``
#: is ``""`` when the subject is not a userset (NULL would defeat the unique key).
rebac_tuples = Table(
    "rebac_tuples",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("tuple_id", String(32), primary_key=True),
    Column("object_type", String(64), nullable=False),
    Column("object_id", PathText, nullable=False),
    Column("relation", String(64), nullable=False),
    Column("subject_type", String(64), nullable=False),
    Column("subject_id", PathText, nullable=False),
    Column("subject_relation", String(64), nullable=False, default=""),
    Column("expires_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255), nullable=True),
    UniqueConstraint("tenant_id", "object_type", "object_id", "relation", "subject_type",
                     "subject_id", "subject_relation", name="uq_rebac_tuples_key"),
)
Index("ix_rebac_tuples_subject", rebac_tuples.c.tenant_id, rebac_tuples.c.subject_type,
      rebac_tuples.c.subject_id, rebac_tuples.c.subject_relation, rebac_tuples.c.object_type,
      rebac_tuples.c.relation)

#: Per-tenant revision of the tuple store: bumped by every tuple write in the same
#: transaction; consistency tokens and check caches are keyed by it.
authz_revisions = Table(
    "authz_revisions",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

#: Per-tenant authorization models (OpenFGA DSL); the newest row is in force.
authz_models = Table(
    "authz_models",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("model_id", String(32), primary_key=True),
    Column("dsl", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

#: Users exist per tenant: ``alice`` of acme and ``alice`` of beta are two users.
users = Table(
    "users",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Column("created_at", Float, nullable=False),
)

#: API keys. Only an HMAC of the secret is stored; ``key_id`` is the visible prefix.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("tenant_id", String(63), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("subject_type", String(64), nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
    Column("incarnation", String(32), nullable=True),  # None for administrator keys
)
Index("ix_api_keys_tenant_user", api_keys.c.tenant_id, api_keys.c.user_id)

#: Cross-tenant shares: a grant to another tenant's members on a path of the source
#: tenant, with the tuple that carries it. Kept on both sides' indexes so that listing
#: and tenant deletion find them from either end.
shares = Table(
    "shares",
    metadata,
    Column("source_tenant", String(63), primary_key=True),
    Column("share_id", String(32), primary_key=True),
    Column("target_tenant", String(63), nullable=False),
    Column("path", PathText, nullable=False),
    Column("permission", String(64), nullable=False),
    Column("tuple_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("created_by", String(255), nullable=True),
    Column("target_incarnation", String(32), nullable=True),
)
Index("ix_shares_target", shares.c.target_tenant, shares.c.source_tenant)

#: The audit log: per-tenant gapless sequence, each event chained to the previous by hash.
#: Rows are only ever inserted.
audit_events = Table(
    "audit_events",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("at", Float, nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("key_id", String(32), nullable=True),
    Column("action", String(64), nullable=False),
    Column("target", PathText, nullable=True),
    Column("result", String(32), nullable=False),
    Column("detail", Text, nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("client", String(64), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_events_tenant_at", audit_events.c.tenant_id, audit_events.c.at)

#: The head of each tenant's chain: last sequence number and hash (the row writers lock).
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    # Retention prunes the oldest events; the chain then starts after this event.
    Column("base_seq", BigInteger, nullable=False, default=0),
    Column("base_hash", String(64), nullable=False, default="0" * 64),
)

#: This deployment's identity: one row (``singleton`` is always 1), written when the
#: deployment is created or adopted (nexus.service.deployment). The data directory and
#: the blob store record the same id, so a database is never paired with the files of
#: another deployment.
deployment = Table(
    "deployment",
    metadata,
    Column("singleton", Integer, primary_key=True, autoincrement=False),
    Column("deployment_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("origin", String(16), nullable=False),  # "created" | "adopted"
)

#: Which cached tenant state or tuple revision another process changed (SQLite; on
#: PostgreSQL the same events travel by NOTIFY): see nexus.service.coherence.
cache_events = Table(
    "cache_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("tenant_id", String(63), nullable=False),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

#: Each tenant's request token bucket, shared by every process of the deployment, and
#: the requests counted but not yet added to ``tenant_usage``/``usage_daily``.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("calls", BigInteger, nullable=False, default=0),
    Column("calls_billed", BigInteger, nullable=False, default=0),
)

