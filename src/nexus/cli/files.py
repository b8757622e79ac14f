"""``nexus fs``: files and directories on a server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from nexus.cli import render
from nexus.cli.connection import (
    Progress,
    Remote,
    Yes,
    confirm,
    file_chunks,
    progress_wanted,
    remote_command,
    save_stream,
)

__all__ = ["fs_app"]

fs_app = typer.Typer(
    help="Files and directories: list, read, upload, download, create, remove, move, copy. "
         "Paths are absolute Nexus paths such as /tenants/acme/shared/plan.md.",
    no_args_is_help=True)

ENTRY_COLUMNS = ("name", "type", "size", "modified_at", "path")
FILE_COLUMNS = ("path", "type", "size", "version", "etag", "modified_at")

NexusPath = Annotated[str, typer.Argument(
    metavar="PATH", help="Nexus path, e.g. /tenants/acme/shared/a.txt.", show_default=False)]
Source = Annotated[str, typer.Argument(metavar="SRC", help="Existing Nexus path.",
                                       show_default=False)]
Destination = Annotated[str, typer.Argument(metavar="DST", help="New Nexus path.",
                                            show_default=False)]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")]


@fs_app.command("ls")
@remote_command
def ls(remote: Remote,
       path: Annotated[str, typer.Argument(metavar="PATH", help="Directory to list.")] = "/",
       recursive: Annotated[bool, typer.Option("--recursive", "-r",
                                               help="Everything below, not only children.")]
       = False) -> None:
    """List the entries of a directory (name, type, size, last change)."""
    entries = remote.client.list(path, recursive=recursive)
    remote.show(entries, columns=ENTRY_COLUMNS, title=path)


@fs_app.command("cat")
@remote_command
def cat(remote: Remote, path: NexusPath) -> None:
    """Write a file's content to stdout, streamed."""
    for chunk in remote.client.read_stream(path):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


@fs_app.command("put")
@remote_command
def put(remote: Remote,
        local: Annotated[Path, typer.Argument(
            metavar="LOCAL_FILE", help="Local file to upload.", exists=True, dir_okay=False,
            readable=True)],
        path: Annotated[str, typer.Argument(
            metavar="PATH", help="Nexus path; ending in / uploads under the local file's name.")],
        progress: Progress = None) -> None:
    """Upload a local file (streamed; created or replaced)."""
    target = path + local.name if path.endswith("/") else path
    chunks = render.track(file_chunks(local), total=local.stat().st_size, label=local.name,
                          enabled=progress_wanted(progress))
    remote.show(remote.client.write(target, chunks), columns=FILE_COLUMNS)


@fs_app.command("get")
@remote_command
def get(remote: Remote, path: NexusPath,
        local: Annotated[str | None, typer.Argument(
            metavar="LOCAL_FILE", help="Local file to write ('-' for stdout); default: the "
                                       "file's name in the current directory.",
            show_default=False)] = None,
        progress: Progress = None) -> None:
    """Download a file (streamed), with a progress bar for large ones."""
    info = remote.client.stat(path)
    dest = local or info["name"]
    written = save_stream(remote.client.read_stream(path), dest, total=info["size"],
                          label=info["name"], progress=progress)
    if dest != "-":
        remote.show({"path": path, "local": dest, "bytes": written})


@fs_app.command("mkdir")
@remote_command
def mkdir(remote: Remote, path: NexusPath,
          parents: Annotated[bool, typer.Option(
              "--parents/--no-parents", help="Create missing parent directories.")] = True
          ) -> None:
    """Create a directory (no error if it exists)."""
    remote.show(remote.client.mkdir(path, parents=parents), columns=FILE_COLUMNS)


@fs_app.command("rm")
@remote_command
def rm(remote: Remote, path: NexusPath,
       recursive: Annotated[bool, typer.Option(
           "--recursive", "-r", help="Remove a directory and everything below it.")] = False,
       directory: Annotated[bool, typer.Option(
           "--dir", "-d", help="Remove an empty directory.")] = False,
       yes: Yes = False) -> None:
    """Delete a file, or a directory with --dir (empty) or --recursive. Asks first."""
    confirm(f"Delete {path}{' and everything below it' if recursive else ''}?", yes)
    if recursive or directory:
        remote.client.rmdir(path, recursive=recursive)
    else:
        remote.client.delete(path)
    remote.show({"deleted": path})


@fs_app.command("mv")
@remote_command
def mv(remote: Remote, src: Source, dst: Destination, overwrite: Overwrite = False) -> None:
    """Move or rename a file or directory."""
    remote.show(remote.client.rename(src, dst, overwrite=overwrite), columns=FILE_COLUMNS)


@fs_app.command("cp")
@remote_command
def cp(remote: Remote, src: Source, dst: Destination, overwrite: Overwrite = False) -> None:
    """Copy a file."""
    remote.show(remote.client.copy(src, dst, overwrite=overwrite), columns=FILE_COLUMNS)
