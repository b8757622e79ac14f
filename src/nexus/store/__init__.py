"""Metadata store: schema, migrations, connections and one repository per aggregate."""

from __future__ import annotations

from nexus.store.db import Database, WriteConflict, normalize_database_url
from nexus.store.files import DIRECTORY, FILE, FileRecord, FileRepository
from nexus.store.tenants import TenantRecord, TenantRepository
from nexus.store.usage import Usage, UsageRepository

__all__ = [
    "DIRECTORY",
    "FILE",
    "Database",
    "FileRecord",
    "FileRepository",
    "TenantRecord",
    "TenantRepository",
    "Usage",
    "UsageRepository",
    "WriteConflict",
    "normalize_database_url",
]
