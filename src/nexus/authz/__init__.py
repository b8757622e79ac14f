"""Relationship-based access control: model parser, tuple readers and the checker."""

from __future__ import annotations

__all__: list[str] = []
