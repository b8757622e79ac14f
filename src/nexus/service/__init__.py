"""The service layer: the only home of business rules. Adapters call nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from nexus.service.access import AccessGate, Action
from nexus.service.audit import AuditLog
from nexus.service.files import FileService, ReadStream
from nexus.service.keys import KeyService
from nexus.service.maintenance import FsckReport, GcReport, Maintenance
from nexus.service.permissions import CheckCache, PermissionEngine, RevisionTracker
from nexus.service.quotas import QuotaLedger
from nexus.service.rebac import RebacService
from nexus.service.share_alias import ShareAliases
from nexus.service.shares import ShareService
from nexus.service.tenant_state import TenantStates
from nexus.service.tenants import TenantService
from nexus.service.transfer import TransferService
from nexus.settings import Settings
from nexus.store import Database
from nexus.types import Principal

__all__ = [
    "AccessGate",
    "Action",
    "AuditLog",
    "FileService",
    "FsckReport",
    "GcReport",
    "KeyService",
    "Maintenance",
    "NexusService",
    "QuotaLedger",
    "RebacService",
    "ShareService",
    "ReadStream",
    "TenantService",
    "TransferService",
    "bootstrap",
]


@dataclass(frozen=True)
class NexusService:
    """One deployment's services, composed once by :func:`bootstrap`."""

    settings: Settings
    db: Database
    audit: AuditLog
    files: FileService
    keys: KeyService
    rebac: RebacService
    shares: ShareService
    tenants: TenantService
    transfer: TransferService
    permissions: PermissionEngine
    maintenance: Maintenance

    def admit(self, principal: Principal) -> None:
        """Per-request tenant gate (state, rate limit) — before any permission check."""
        self.tenants.admit(principal)

    def close(self) -> None:
        """Flush buffered counters and release database connections."""
        self.tenants.flush_api_calls()
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
    states = TenantStates(db)
    audit = AuditLog(db=db)
    engine = PermissionEngine(db=db, revisions=revisions, cache=CheckCache(), states=states)
    gate = AccessGate(engine, audit)
    tenants = TenantService(db=db, gate=gate, states=states, audit=audit)
    audit.bind(reads_enabled=states.audits_reads, is_tenant_admin=tenants.is_tenant_admin)
    quotas = QuotaLedger(db=db)
    secret = load_or_create_secret(settings.data_dir, settings.secret)
    files = FileService(db=db, blobs=blobs, gate=gate, revisions=revisions, quotas=quotas,
                        tenants=tenants, states=states, audit=audit,
                        aliases=ShareAliases(db=db))
    return NexusService(
        settings=settings,
        db=db,
        files=files,
        keys=KeyService(db=db, deployment_secret=secret, quotas=quotas, tenants=tenants,
                        audit=audit),
        rebac=RebacService(db=db, engine=engine, revisions=revisions, audit=audit),
        shares=ShareService(db=db, gate=gate, tenants=tenants, revisions=revisions,
                            audit=audit),
        audit=audit,
        tenants=tenants,
        transfer=TransferService(db=db, blobs=blobs, files=files, tenants=tenants,
                                 revisions=revisions, spool_dir=settings.data_dir / "spool"),
        permissions=engine,
        maintenance=Maintenance(db=db, blobs=blobs),
    )
