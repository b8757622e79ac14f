"""The deployment's identity row, and whether a database already holds a deployment.

Both questions are asked before the schema is migrated (so that a refused start leaves an
empty database empty): every method works on a database that has none of the tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, inspect, literal, select
from sqlalchemy import table as table_clause

from nexus.store.schema import api_keys, deployment

__all__ = ["CONTENT_TABLES", "DeploymentRecord", "DeploymentRepository"]

_D = deployment.c

#: A row in any of these means the database holds a deployment's data (pre-upgrade ones
#: included): its files, tenants, identities, permissions, shares or audit history.
CONTENT_TABLES = ("files", "tenants", "api_keys", "users", "rebac_tuples", "shares",
                  "audit_events")


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """Which deployment this database belongs to, since when, and how the id came to be
    (``created`` with the deployment, or ``adopted`` by a pre-upgrade one)."""

    deployment_id: str
    created_at: float
    origin: str


class DeploymentRepository:
    """SQL access to the one-row ``deployment`` table on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self) -> DeploymentRecord | None:
        """The identity row; ``None`` if there is none (or no table yet)."""
        if not inspect(self.conn).has_table(deployment.name):
            return None
        row = self.conn.execute(select(_D.deployment_id, _D.created_at, _D.origin)
                                .where(_D.singleton == 1)).first()
        return DeploymentRecord(row[0], float(row[1]), row[2]) if row else None

    def record(self, deployment_id: str, *, origin: str, now: float) -> None:
        """Write the identity row. A row already there (another process won the race)
        raises ``WriteConflict`` at commit; it is never overwritten."""
        self.conn.execute(insert(deployment).values(singleton=1, deployment_id=deployment_id,
                                                    created_at=now, origin=origin))

    def knows_key(self, key_id: str) -> bool:
        """Whether an API key with this id was issued here (any schema version: only the
        id column is read), to tell whether an ``admin.key`` belongs to this database."""
        return self.conn.execute(select(api_keys.c.key_id)
                                 .where(api_keys.c.key_id == key_id)).first() is not None

    def holds_data(self) -> bool:
        """Whether any :data:`CONTENT_TABLES` table exists and has a row."""
        present = set(inspect(self.conn).get_table_names())
        return any(self.conn.execute(select(literal(1)).select_from(table_clause(name))
                                     .limit(1)).first() is not None
                   for name in CONTENT_TABLES if name in present)
