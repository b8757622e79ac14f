"""``SCHEMA_HEAD`` is what lets a process start without importing Alembic: it must name
the newest migration, or a new migration would never run."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from nexus.service import NexusService
from nexus.store.db import _MIGRATIONS, SCHEMA_HEAD


def test_schema_head_is_the_newest_migration() -> None:
    assert ScriptDirectory(str(_MIGRATIONS)).get_heads() == [SCHEMA_HEAD]


def test_a_new_deployment_is_at_the_head(service: NexusService) -> None:
    assert service.db.schema_revisions() == {SCHEMA_HEAD}
