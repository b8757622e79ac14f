"""Prometheus metrics of one app (its own registry: nothing global, nothing shared).

Labels are bounded: RPC method names come from the method table (anything else counts as
``unknown``), statuses are HTTP codes, quota resources are a fixed set. Per-tenant series
are deliberately absent — tenants are counted by status and plan instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nexus.blobs import base as blobs
from nexus.rpc import METHODS

if TYPE_CHECKING:
    from nexus.server.admission import StreamAdmission
    from nexus.service import NexusService

__all__ = ["Metrics", "MetricsMiddleware"]

_REFUSALS = frozenset({"quota_exceeded", "rate_limited", "tenant_suspended"})


class Metrics:
    """The metric objects of one app."""

    def __init__(self, service: NexusService, admission: StreamAdmission | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("nexus_requests_total", "Requests by operation and status",
                                ["operation", "status"], registry=self.registry)
        self.latency = Histogram("nexus_request_seconds", "Request latency by operation",
                                 ["operation"], registry=self.registry,
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25,
                                          .5, 1, 2.5, 10))
        self.auth_failures = Counter("nexus_auth_failures_total",
                                     "Requests refused for a missing or bad API key",
                                     registry=self.registry)
        self.refusals = Counter("nexus_refusals_total",
                                "Quota, rate-limit and suspension refusals by reason",
                                ["reason"], registry=self.registry)
        self.registry.register(_ServiceCollector(service))
        if admission is not None:
            self.registry.register(_StreamCollector(admission))

    def observe(self, operation: str, status: int, seconds: float) -> None:
        self.requests.labels(operation, str(status)).inc()
        self.latency.labels(operation).observe(seconds)
        if status == 401:
            self.auth_failures.inc()

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason).inc()


class _ServiceCollector(Collector):
    """Gauges read at scrape time: cache, connection pool, tenants by status and plan."""

    def __init__(self, service: NexusService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        cache = self._service.permissions.cache
        hits = GaugeMetricFamily("nexus_check_cache", "Permission-check cache lookups",
                                 labels=["result"])
        hits.add_metric(["hit"], cache.hits)
        hits.add_metric(["miss"], cache.misses)
        yield hits
        engine = self._service.permissions
        timing = SummaryMetricFamily("nexus_permission_check_seconds",
                                     "Uncached permission evaluations (one per batch of "
                                     "paths) and their total time")
        timing.add_metric([], engine.evaluations, engine.evaluation_seconds)
        yield timing
        db = self._service.db
        pool = db.engine.pool
        in_use = GaugeMetricFamily("nexus_db_connections", "Database pool connections",
                                   labels=["state"])
        in_use.add_metric(["in_use"], float(getattr(pool, "checkedout", lambda: 0)()))
        in_use.add_metric(["idle"], float(getattr(pool, "checkedin", lambda: 0)()))
        in_use.add_metric(["waiting"], float(db.waiting))
        yield in_use
        blob_bytes = CounterMetricFamily("nexus_blob_bytes", "Bytes stored into and read "
                                         "out of the blob store", labels=["direction"])
        blob_bytes.add_metric(["in"], blobs.traffic.bytes_in)
        blob_bytes.add_metric(["out"], blobs.traffic.bytes_out)
        yield blob_bytes
        queued = GaugeMetricFamily("nexus_audit_queue", "Read and denial events waiting "
                                   "for their batch commit, and the queue's capacity",
                                   labels=["state"])
        queued.add_metric(["queued"], float(self._service.audit.queued))
        queued.add_metric(["capacity"], float(self._service.settings.audit_queue))
        yield queued
        fleet = self._service.tenants.fleet_counts()
        for dimension in ("status", "plan"):
            family = GaugeMetricFamily(f"nexus_tenants_by_{dimension}",
                                       f"Tenants by {dimension}", labels=[dimension])
            for value, count in sorted(fleet[dimension].items()):
                family.add_metric([value], count)
            yield family


class _StreamCollector(Collector):
    """Streams open now against their caps (server/admission.py): the process total
    only, since a per-tenant series would be unbounded."""

    def __init__(self, admission: StreamAdmission) -> None:
        self._admission = admission

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("nexus_open_streams", "Uploads, downloads and large RPC "
                                   "bodies open now, and the process's cap",
                                   labels=["state"])
        family.add_metric(["open"], self._admission.active())
        family.add_metric(["cap"], self._admission.total)
        yield family


def operation_of(scope: Scope) -> str:
    """A bounded label for a request: the RPC method, the content verb, or the route."""
    path: str = scope.get("path", "")
    if path.startswith("/api/nfs/"):
        name = path[len("/api/nfs/"):]
        return name if name in METHODS else "unknown"
    if path == "/api/fs/content":
        return f"content.{scope.get('method', 'GET')}"
    return path if path in ("/health", "/metrics", "/openapi.json") else "other"


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                code = dict(message.get("headers") or []).get(b"x-nexus-error", b"").decode()
                if code in _REFUSALS:
                    self.metrics.refused(code)
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.observe(operation_of(scope), status, time.perf_counter() - started)
