"""The service layer: the only home of business rules. Adapters call nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from nexus.service.access import AccessGate, Action
from nexus.service.files import FileService, ReadStream
from nexus.service.keys import KeyService
from nexus.service.maintenance import FsckReport, GcReport, Maintenance
from nexus.service.permissions import CheckCache, PermissionEngine, RevisionTracker
from nexus.service.rebac import RebacService
from nexus.settings import Settings
from nexus.store import Database

__all__ = [
    "AccessGate",
    "Action",
    "FileService",
    "FsckReport",
    "GcReport",
    "KeyService",
    "Maintenance",
    "NexusService",
    "RebacService",
    "ReadStream",
    "bootstrap",
]


@dataclass(frozen=True)
class NexusService:
    """One deployment's services, composed once by :func:`bootstrap`."""

    settings: Settings
    db: Database
    files: FileService
    keys: KeyService
    rebac: RebacService
    permissions: PermissionEngine
    maintenance: Maintenance

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()


def bootstrap(settings: Settings) -> NexusService:
    """Build every dependency from ``settings`` (and migrate the schema) — nothing else does."""
    from nexus.auth import load_or_create_secret
    from nexus.blobs import blob_store_from_url

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.database_url:
        db = Database(settings.database_url)
    else:
        db = Database.for_data_dir(settings.data_dir)
    db.migrate()
    blobs = blob_store_from_url(settings.blob_url or str(settings.data_dir / "blobs"))
    revisions = RevisionTracker(db)
    engine = PermissionEngine(db=db, revisions=revisions, cache=CheckCache())
    gate = AccessGate(engine)
    return NexusService(
        settings=settings,
        db=db,
        files=FileService(db=db, blobs=blobs, gate=gate, revisions=revisions),
        keys=KeyService(db=db, deployment_secret=load_or_create_secret(settings.data_dir,
                                                                       settings.secret)),
        rebac=RebacService(db=db, engine=engine, revisions=revisions),
        permissions=engine,
        maintenance=Maintenance(db=db, blobs=blobs),
    )
