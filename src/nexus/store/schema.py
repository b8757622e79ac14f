"""Every table of the metadata store, declared once on one ``MetaData``.

Rows that belong to a tenant carry ``tenant_id`` first in their primary key and in every
index, so each query is confined to one partition by construction. Paths use the binary
("C") collation on PostgreSQL so that range scans over a subtree (``path > 'p/'`` and
``path < 'p0'``) select exactly the rows under ``p``, as they do on SQLite.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["files", "metadata", "tenants"]

metadata = MetaData()

PathText = Text().with_variant(Text(collation="C"), "postgresql")

#: Tenants known to the store; the tenancy issue extends this record.
tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(63).with_variant(String(63, collation="C"), "postgresql"),
           primary_key=True),
    Column("created_at", Float, nullable=False),
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
