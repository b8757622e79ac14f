"""The HTTP server: an ASGI app over the service layer."""

from __future__ import annotations

from nexus.server.app import create_app, create_metrics_app

__all__ = ["create_app", "create_metrics_app"]
