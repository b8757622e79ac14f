"""The service layer: the only home of business rules. Adapters call nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from nexus.service.access import AccessGate, Action
from nexus.service.audit import AuditLog
from nexus.service.audit_writer import AuditWriter
from nexus.service.coherence import Coherence, coherence_for
from nexus.service.files import FileService, ReadStream
from nexus.service.keys import KeyService
from nexus.service.maintenance import FsckReport, GcReport, Maintenance
from nexus.service.permissions import CheckCache, PermissionEngine, RevisionTracker
from nexus.service.quotas import QuotaLedger
from nexus.service.rebac import RebacService
from nexus.service.share_alias import ShareAliases
from nexus.service.shares import ShareService
from nexus.service.signing import SignedUrls
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
    "Coherence",
    "FileService",
    "FsckReport",
    "GcReport",
    "KeyService",
    "Maintenance",
    "NexusService",
    "QuotaLedger",
    "RebacService",
    "ShareService",
    "SignedUrls",
    "ReadStream",
    "TenantService",
    "TransferService",
    "bootstrap",
    "open_deployment",
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
    signing: SignedUrls
    #: The enforcement point, for adapters' questions (e.g. who may read /metrics).
    policy: AccessGate
    #: Other processes' changes reaching this one's caches.
    coherence: Coherence

    def admit(self, principal: Principal) -> None:
        """Per-request tenant gate (state, rate limit) — before any permission check."""
        self.tenants.admit(principal)

    def close(self) -> None:
        """Commit the queued audit events, stop listening for other processes' changes and
        release database connections (request counts are in the shared buckets already)."""
        self.audit.close()
        self.coherence.close()
        self.db.dispose()


def open_deployment(settings: Settings) -> NexusService:
    """An EXISTING deployment, for maintenance commands: refuses (changing nothing) where
    there is none — no data directory, a database without a deployment id — or where the
    database, data directory and blob store are different deployments'; never creates a
    directory, table, secret or key."""
    return bootstrap(settings, create=False)


def bootstrap(settings: Settings, *, create: bool = True) -> NexusService:
    """Build every dependency from ``settings`` (and migrate the schema) — nothing else does.

    The database, data directory and blob store must be one deployment
    (:mod:`nexus.service.deployment`); a new one is made only with ``create`` and only
    where none of them has one.
    """
    from nexus.service.deployment import open_stores

    stores = open_stores(settings, create=create)
    db, blobs = stores.db, stores.blobs
    coherence = coherence_for(db)
    revisions = RevisionTracker(db, coherence=coherence)
    states = TenantStates(db, coherence=coherence)
    audit = AuditLog(db=db, writer=AuditWriter(db, delay=settings.audit_delay,
                                               capacity=settings.audit_queue))
    engine = PermissionEngine(db=db, revisions=revisions, cache=CheckCache(), states=states)
    gate = AccessGate(engine, audit, states)
    tenants = TenantService(db=db, gate=gate, states=states, audit=audit)
    audit.bind(read_mode=states.audit_reads, incarnation=states.incarnation,
               may_read=gate.may_read_audit)
    quotas = QuotaLedger(db=db)
    secret = stores.secret
    files = FileService(db=db, blobs=blobs, gate=gate, revisions=revisions, quotas=quotas,
                        tenants=tenants, states=states, audit=audit,
                        aliases=ShareAliases(db=db))
    keys = KeyService(db=db, deployment_secret=secret, quotas=quotas, tenants=tenants,
                      audit=audit, gate=gate, coherence=coherence)
    service = NexusService(
        settings=settings,
        db=db,
        files=files,
        keys=keys,
        rebac=RebacService(db=db, engine=engine, revisions=revisions, audit=audit,
                           gate=gate, charge=tenants.charge_rate),
        shares=ShareService(db=db, gate=gate, revisions=revisions, audit=audit),
        audit=audit,
        tenants=tenants,
        transfer=TransferService(db=db, blobs=blobs, files=files, tenants=tenants,
                                 revisions=revisions, spool_dir=settings.data_dir / "spool",
                                 quotas=quotas, audit=audit, gate=gate),
        permissions=engine,
        policy=gate,
        maintenance=Maintenance(db=db, blobs=blobs),
        signing=SignedUrls(files=files, keys=keys, gate=gate, states=states, audit=audit,
                           deployment_secret=secret,
                           max_lifetime=settings.signed_url_max_lifetime,
                           public_url=settings.public_url),
        coherence=coherence,
    )
    coherence.start()  # after every cache subscribed
    return service
