"""``create_app``: the ASGI application. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import nexus
from nexus.errors import NexusError, NexusPermissionError
from nexus.server.admission import BodyBudget, StreamAdmission
from nexus.server.content import download, upload
from nexus.server.credentials import authenticate, bearer_token
from nexus.server.metrics import Metrics, MetricsMiddleware
from nexus.server.middleware import RequestIdMiddleware
from nexus.server.openapi import install_openapi
from nexus.server.responses import error_response
from nexus.server.rpc_endpoint import rpc_endpoint
from nexus.server.signed import signed_app
from nexus.service import NexusService, bootstrap
from nexus.service.signing import ROUTE
from nexus.settings import Settings

__all__ = ["create_app", "create_metrics_app"]


def create_app(settings: Settings | None = None, *,
               service: NexusService | None = None) -> FastAPI:
    """The Nexus HTTP API over ``service`` (or one bootstrapped from ``settings``).

    Middleware, outermost first: request id and access log, then the router. The
    endpoints authenticate and dispatch through the service layer; they decide nothing.
    The serving budgets (stream caps, body timeouts, worker threads) are the service's
    settings.
    """
    owned = service is None
    svc = service if service is not None else bootstrap(settings or Settings.load())
    limits = settings if settings is not None else svc.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The pool run_in_threadpool draws from; the stream cap is sized below it.
        anyio.to_thread.current_default_thread_limiter().total_tokens = limits.worker_threads
        yield
        if owned:
            svc.close()

    app = FastAPI(title="Nexus", version=nexus.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.service = svc
    app.state.admission = StreamAdmission(per_tenant=limits.streams_per_tenant,
                                          total=limits.streams_total)
    app.state.body_budget = partial(BodyBudget, idle=limits.body_idle_timeout,
                                    min_rate=limits.body_min_rate)
    # /health pings the database on threads of its own: however busy the request pool
    # is, the liveness probe is answered (and says whether the database is).
    app.state.health_threads = anyio.CapacityLimiter(2)
    app.add_api_route("/health", health, methods=["GET"], summary="Liveness and version")
    app.add_api_route("/api/nfs/{method}", rpc_endpoint, methods=["POST"],
                      summary="Call an RPC method (JSON-RPC 2.0 envelope)")
    app.add_api_route("/api/fs/content", download, methods=["GET"],
                      summary="Download a file (supports Range)")
    app.add_api_route("/api/fs/content", upload, methods=["PUT"],
                      summary="Upload a file from the raw request body")
    app.add_api_route("/api/fs/content", upload, methods=["POST"],
                      summary="Append the raw request body to a file")
    signed = signed_app(limits.cors_origins)
    signed.state = app.state  # one service, admission and body budget for both
    app.mount(ROUTE, signed, name="signed")
    metrics = Metrics(svc, app.state.admission)
    app.state.metrics = metrics
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"],
                      summary="Prometheus metrics (system administrator key required)")
    # Outermost first: request id and access log, then metrics, then the router.
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    install_openapi(app)
    return app


def create_metrics_app(app: FastAPI) -> Starlette:
    """``/metrics`` of ``app`` with no key, for ``nexus serve --metrics-port``.

    It is meant for a private interface that only the scraper reaches: whoever can
    connect may read it (it carries counts, never a key, path or tenant name).
    """
    registry = app.state.metrics.registry

    async def open_metrics(_request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", open_metrics, methods=["GET"])])


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus exposition, for the system administrator's key only."""
    service: NexusService = request.app.state.service
    try:
        principal = await run_in_threadpool(authenticate, service,
                                             bearer_token(request))
        if not service.policy.may_read_metrics(principal):
            raise NexusPermissionError("permission denied: metrics are for the system "
                                       "administrator")
    except NexusError as exc:
        return error_response(exc)
    registry = request.app.state.metrics.registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def health(request: Request) -> JSONResponse:
    """``{"status": "ok", "version": …, "mode": "multi-tenant"}``; 503 if the database is down."""
    service: NexusService = request.app.state.service
    try:
        await anyio.to_thread.run_sync(service.db.ping,
                                       limiter=request.app.state.health_threads)
    except NexusError as exc:
        return JSONResponse({"status": "unavailable", "version": nexus.__version__,
                             "mode": "multi-tenant", "reason": exc.message}, status_code=503)
    return JSONResponse({"status": "ok", "version": nexus.__version__, "mode": "multi-tenant"})
