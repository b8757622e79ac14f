"""Plumbing shared by every remote command: where the server is, which key to present,
output mode, confirmation and local file transfer.

A remote command is written as ``def cmd(remote: Remote, <its own options>)`` and
decorated with :func:`remote_command`, which adds the connection options (``--url``,
``--api-key``, ``--profile``, ``--data-dir``) and ``--json`` to its command line, opens the
SDK client, runs the command under :func:`~nexus.cli.render.exit_on_error` and closes the client.

Where the connection comes from, first match wins, option by option:

1. ``--url`` / ``--api-key`` on the command line;
2. the profile named by ``--profile`` (or ``$NEXUS_PROFILE``) in
   ``~/.config/nexus/config.toml`` (``$XDG_CONFIG_HOME/nexus/config.toml`` if set)::

       [profiles.prod]
       url = "https://nexus.example.com"
       api_key = "nx_…"
       timeout = 60        # optional, seconds

   The file holds keys, so it is read only if no one but its owner may read or write
   it (``chmod 600``);
3. ``$NEXUS_URL`` / ``$NEXUS_API_KEY``;
4. with no URL at all, ``--data-dir`` (``$NEXUS_DATA_DIR``): the embedded engine on that
   data directory, in-process, through the same SDK client (metadata in
   ``$NEXUS_DATABASE_URL`` or SQLite there), as the local administrator unless an API
   key is given.
"""

from __future__ import annotations

import functools
import inspect
import os
import stat
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from nexus.cli import render
from nexus.client import NexusClient, connect
from nexus.errors import InvalidArgumentError

__all__ = ["Progress", "Remote", "Yes", "config_path", "confirm", "file_chunks",
           "load_profile", "parse_ref", "progress_wanted", "remote_command", "save_stream"]

CHUNK = 1024 * 1024

_CONNECTION = "Connection"
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Progress = Annotated[bool | None, typer.Option(
    "--progress/--no-progress", show_default=False,
    help="Show a progress bar with throughput and ETA on stderr. Default: only when "
         "stdout is a terminal.")]


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/nexus/config.toml``, default ``~/.config/nexus/config.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "nexus" / "config.toml"


def load_profile(name: str, path: Path | None = None) -> dict[str, Any]:
    """The ``[profiles.<name>]`` table of the config file, refusing a file that anyone
    but its owner may read or write."""
    path = path or config_path()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise InvalidArgumentError(f"profile {name!r}: no config file {path}") from None
    if mode & 0o077:
        raise InvalidArgumentError(
            f"refusing to read {path}: its mode is {mode:04o}, but it holds API keys and "
            f"must be readable by its owner only (run: chmod 600 {path})")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgumentError(f"{path} is not valid TOML: {exc}") from None
    profiles = config.get("profiles", {})
    if name not in profiles:
        raise InvalidArgumentError(f"no profile {name!r} in {path}; profiles: "
                                   f"{', '.join(sorted(profiles)) or 'none'}")
    profile = dict(profiles[name])
    unknown = set(profile) - {"url", "api_key", "timeout"}
    if unknown:
        raise InvalidArgumentError(f"profile {name!r} in {path}: unknown keys "
                                   f"{sorted(unknown)} (allowed: url, api_key, timeout)")
    return profile


def _resolve(ctx: typer.Context, url: str | None, api_key: str | None, profile: str | None,
             data_dir: Path | None) -> dict[str, Any]:
    """The client config: command line, then profile, then environment; without any
    server, the embedded engine in ``data_dir`` (see module doc)."""
    chosen = load_profile(profile) if profile else {}
    config: dict[str, Any] = {"timeout": chosen.get("timeout", 300.0)}
    for name, value in (("url", url), ("api_key", api_key)):
        source = ctx.get_parameter_source(f"nexus_{name}")
        from_env = source is not None and source.name == "ENVIRONMENT"
        config[name] = chosen.get(name, value) if from_env or value is None else value
    if config["url"]:
        return config
    if data_dir is None:
        raise InvalidArgumentError("no server given: use --url, $NEXUS_URL, --profile or "
                                   "--data-dir")
    return {"data_dir": str(data_dir), **({"api_key": config["api_key"]}
                                           if config["api_key"] else {})}


@dataclass
class Remote:
    """What a remote command gets: the SDK client and the output mode."""

    client: NexusClient
    as_json: bool

    def show(self, data: Any, **kwargs: Any) -> None:
        """Render ``data`` (see :func:`nexus.cli.render.show`)."""
        render.show(data, as_json=self.as_json, **kwargs)


_OPTIONS = [
    inspect.Parameter("nexus_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
    inspect.Parameter("nexus_url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=
                      Annotated[str | None, typer.Option(
                          "--url", envvar="NEXUS_URL", rich_help_panel=_CONNECTION,
                          help="Server URL, e.g. http://127.0.0.1:8080.")]),
    inspect.Parameter("nexus_api_key", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=Annotated[str | None, typer.Option(
                          "--api-key", envvar="NEXUS_API_KEY", rich_help_panel=_CONNECTION,
                          show_default=False, help="API key to present (nx_…).")]),
    inspect.Parameter("nexus_profile", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=Annotated[str | None, typer.Option(
                          "--profile", envvar="NEXUS_PROFILE", rich_help_panel=_CONNECTION,
                          help="Profile in ~/.config/nexus/config.toml (must be mode 0600) "
                               "giving url and api_key.")]),
    inspect.Parameter("nexus_data_dir", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=Annotated[Path | None, typer.Option(
                          "--data-dir", envvar="NEXUS_DATA_DIR", rich_help_panel=_CONNECTION,
                          help="No server: work on this data directory in-process (as the "
                               "local administrator, or as --api-key's user). Used only "
                               "when no URL is given.")]),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False,
                      annotation=Annotated[bool, typer.Option(
                          "--json", rich_help_panel="Output",
                          help="Print machine-readable JSON instead of tables.")]),
]


def remote_command(func: Callable[..., None]) -> Callable[..., None]:
    """Make ``func(remote, **options)`` a Typer command with the connection options."""
    signature = inspect.signature(func, eval_str=True)
    own = list(signature.parameters.values())[1:]

    @functools.wraps(func)
    def command(**kwargs: Any) -> None:
        ctx, url, key, profile, data_dir, as_json = (kwargs.pop(p.name) for p in _OPTIONS)
        with render.exit_on_error(as_json):
            client = connect(config=_resolve(ctx, url, key, profile, data_dir))
            try:
                func(Remote(client, as_json), **kwargs)
            finally:
                client.close()

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *_OPTIONS], return_annotation=None)
    command.__annotations__ = {p.name: p.annotation for p in [*own, *_OPTIONS]}
    return command


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` unless ``--yes``; stop with exit code 1 on anything but yes."""
    if not yes:
        typer.confirm(question, abort=True, err=True)


def progress_wanted(flag: bool | None) -> bool:
    """``--progress`` forces the bar, ``--no-progress`` hides it; else a terminal decides."""
    return sys.stdout.isatty() if flag is None else flag


def parse_ref(text: str, *, userset: bool = False) -> list[str]:
    """``user:alice`` → ``["user", "alice"]``; with ``userset``, ``group:eng#member`` →
    ``["group", "eng", "member"]``. The id may contain ``:`` (``file:/tenants/a``)."""
    kind, sep, ident = text.partition(":")
    if not sep or not kind or not ident:
        raise InvalidArgumentError(f"{text!r} is not TYPE:ID (e.g. user:alice, "
                                   "file:/tenants/acme/shared)")
    if userset and "#" in ident:
        ident, relation = ident.rsplit("#", 1)
        return [kind, ident, relation]
    return [kind, ident]


def file_chunks(path: Path) -> Iterator[bytes]:
    """A local file's bytes, a megabyte at a time."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def save_stream(chunks: Iterator[bytes], dest: str, *, total: int | None, label: str,
                progress: bool | None) -> int:
    """Write ``chunks`` to the local file ``dest`` (``-``: stdout) with a progress bar;
    a file appears under its name only once complete. Returns the bytes written."""
    flowing = render.track(chunks, total=total, label=label,
                           enabled=progress_wanted(progress))
    if dest == "-":
        return sum(sys.stdout.buffer.write(chunk) for chunk in flowing)
    target = Path(dest)
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as handle:
            written = sum(handle.write(chunk) for chunk in flowing)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return written
