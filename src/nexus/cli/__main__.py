"""``python -m nexus.cli``."""

from __future__ import annotations

from nexus.cli.app import main

main()
