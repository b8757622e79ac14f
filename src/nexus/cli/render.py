"""Rendering, progress bars and exit codes for the CLI, in one place.

Human output is a Rich table (a list of records) or a two-column table (one record);
``--json`` prints the same data as JSON on stdout. Errors are one line on stderr (a JSON
object under ``--json``) and the process exits with the error class's ``exit_code``:
2 usage, 3 not found / already exists / conflict, 4 permission or authentication,
5 quota or rate limit, 6 server unavailable or internal error.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from nexus.errors import NexusError

__all__ = ["console", "err_console", "exit_on_error", "print_report", "show", "track"]

console = Console()
err_console = Console(stderr=True)

# Local (client-side) OS errors get the exit code of the matching Nexus error class.
_OS_EXIT_CODES: tuple[tuple[type[OSError], int], ...] = (
    (FileNotFoundError, 3), (FileExistsError, 3), (IsADirectoryError, 3),
    (NotADirectoryError, 3), (PermissionError, 4))


def print_report(title: str, values: Mapping[str, Any]) -> None:
    """A two-column table of named figures."""
    table = Table(title=title, show_header=False)
    for name, value in values.items():
        table.add_row(name, str(value))
    console.print(table)


def show(data: Any, *, as_json: bool = False, table: Any = None,
         columns: Sequence[str] | None = None, title: str | None = None,
         note: str | None = None) -> None:
    """Print a command's result: ``data`` as JSON with ``as_json``, else ``table`` (a
    human projection of ``data``, default ``data`` itself) as a Rich table: a list of
    records becomes one row each, a record name/value rows (``columns`` picks and orders
    the fields of either), a string is printed as it is. ``note`` goes to stderr."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
        return
    human = data if table is None else table
    if isinstance(human, str):
        console.print(human, soft_wrap=True, highlight=False, markup=False)
    elif isinstance(human, Mapping):
        picked = {name: human.get(name) for name in columns} if columns else human
        console.print(_record_table(picked, title))
    elif isinstance(human, Iterable):
        console.print(_rows_table(list(human), columns, title))
    else:
        console.print(_cell("value", human), highlight=False)
    if note:
        err_console.print(note, highlight=False)


def _rows_table(rows: list[Mapping[str, Any]], columns: Sequence[str] | None,
                title: str | None) -> Table:
    names = list(columns or (rows[0].keys() if rows else []))
    cells = [[_cell(name, row.get(name), compact=True) for name in names] for row in rows]
    # An id or a time broken over two lines cannot be copied or read: those columns never
    # wrap, the others fold to make room, and columns that still do not fit are left out
    # (named in the caption) rather than cut.
    widths = [max([len(name), *(len(row[i]) for row in cells)]) if _is_identifier(name)
              else min(len(name), 8) for i, name in enumerate(names)]
    shown = len(names)
    while shown > 1 and sum(widths[:shown]) + 3 * shown + 1 > console.width:
        shown -= 1
    caption = f"{len(rows)} row(s)"
    if shown < len(names):
        caption += (f"; not shown at this width: {', '.join(names[shown:])} "
                    "(--json shows every field)")
    table = Table(title=title, caption=caption)
    for name, width in zip(names[:shown], widths, strict=False):
        if _is_identifier(name):
            table.add_column(name, no_wrap=True, min_width=width)
        else:
            table.add_column(name, overflow="fold")
    for row in cells:
        table.add_row(*(escape(cell) for cell in row[:shown]))
    return table


def _is_identifier(name: str) -> bool:
    return name in ("id", "time", "etag") or name.endswith(("_id", "_at"))


def _record_table(record: Mapping[str, Any], title: str | None) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in record.items():
        if isinstance(value, Mapping) and value:  # one level of nesting: limits.max_files
            for sub, inner in value.items():
                table.add_row(f"{name}.{sub}", escape(_cell(sub, inner)))
        else:
            table.add_row(name, escape(_cell(name, value)))
    return table


def _cell(name: str, value: Any, *, compact: bool = False) -> str:
    """One value as table text: times as ISO-8601 (in UTC, ``Z``, with ``compact``: the
    width a table column can afford), byte counts human-sized."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name.endswith("_at") or name == "time":
        with contextlib.suppress(TypeError, ValueError):
            moment = (datetime.fromtimestamp(value, UTC) if isinstance(value, int | float)
                      else datetime.fromisoformat(value))
            if compact and moment.tzinfo is not None:
                return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            return moment.isoformat(timespec="seconds")
    if isinstance(value, int) and (name == "size" or name.endswith("bytes")):
        return decimal(value)
    if isinstance(value, list | tuple):
        return ", ".join(_cell(name, v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, default=str)
    return str(value)


def track(chunks: Iterable[bytes], *, total: int | None, label: str,
          enabled: bool) -> Iterator[bytes]:
    """Pass ``chunks`` through, drawing a progress bar with percentage, bytes,
    throughput and ETA on stderr while they flow (when ``enabled``)."""
    if not enabled:
        yield from chunks
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task(escape(label), total=total)
        for chunk in chunks:
            progress.advance(task, len(chunk))
            yield chunk


@contextlib.contextmanager
def exit_on_error(as_json: bool = False) -> Iterator[None]:
    """Print a Nexus error (or a local file error) as one line and exit with its class's
    exit code; under ``as_json`` the line is ``{"error": {"code", "message"}}``."""
    try:
        yield
    except NexusError as exc:
        _fail(exc.code, exc.message, exc.exit_code, as_json)
    except OSError as exc:
        code = next((c for cls, c in _OS_EXIT_CODES if isinstance(exc, cls)), 1)
        _fail("local_file", f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              code, as_json)


def _fail(code: str, message: str, exit_code: int, as_json: bool) -> None:
    if as_json:
        sys.stderr.write(json.dumps({"error": {"code": code, "message": message}}) + "\n")
    else:
        err_console.print(f"[red]error[/red] ({code}): {escape(message)}", highlight=False,
                          soft_wrap=True)
    raise typer.Exit(exit_code) from None
