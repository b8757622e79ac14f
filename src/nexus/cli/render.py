"""Rendering and exit codes for the CLI, in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from nexus.errors import NexusError

__all__ = ["console", "err_console", "exit_on_error", "print_report"]

console = Console()
err_console = Console(stderr=True)


def print_report(title: str, values: Mapping[str, Any]) -> None:
    """A two-column table of named figures."""
    table = Table(title=title, show_header=False)
    for name, value in values.items():
        table.add_row(name, str(value))
    console.print(table)


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Print a Nexus error as one line and exit with its class's exit code."""
    try:
        yield
    except NexusError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(exc.exit_code) from None
