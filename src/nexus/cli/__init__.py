"""The ``nexus`` command line."""

from __future__ import annotations

from nexus.cli.app import app, main

__all__ = ["app", "main"]
