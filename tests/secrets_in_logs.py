"""Run-wide check: no API key or deployment secret reaches any log record of the test run.

Every record any logger emits during the session (the server's access log included — it
is switched on at INFO for the whole run) is formatted and scanned at the end for every
key the engine issued in-process, for every deployment secret it loaded, and for anything
shaped like a Nexus key at all. A hit fails the run with the offending line; under xdist
each worker scans its own records and ``tests/run_summary.py`` carries the verdict to the
run's exit status. Servers run as subprocesses are checked by their own tests (tests/cli,
tests/e2e), which read their logs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

import nexus.auth
import nexus.service.keys
from nexus.auth.keys import KEY_PREFIX

from .run_summary import Line, provider

_KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + r"[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")
#: Key secrets (43) and deployment secrets (64) are runs of URL-safe base64 this long.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43,}")


class _Recorder(logging.Handler):
    """Counts every record and keeps the few that hold something secret-shaped."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.seen = 0
        self.suspects: list[tuple[str, list[str]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a broken record must not break the run
            line = f"{record.name} unformattable record {record.msg!r}"
        self.seen += 1
        tokens = _TOKEN.findall(line)
        if tokens or _KEY_SHAPE.search(line):
            # Judged at the end: the key in it may be one issued later in the run.
            self.suspects.append((line, tokens))


_recorder = _Recorder()
_issued: set[str] = set()
_secrets: set[bytes] = set()


def _recording_generate_key() -> tuple[str, Any]:
    text, parsed = _generate_key()
    _issued.add(text)
    return text, parsed


def _recording_load_secret(*args: Any, **kwargs: Any) -> bytes:
    secret = _load_secret(*args, **kwargs)
    _secrets.add(secret)
    return secret


_generate_key = nexus.service.keys.generate_key
_load_secret = nexus.auth.load_or_create_secret


def pytest_configure(config: pytest.Config) -> None:
    nexus.service.keys.generate_key = _recording_generate_key
    nexus.auth.load_or_create_secret = _recording_load_secret
    root = logging.getLogger()
    root.addHandler(_recorder)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def leaks() -> Iterator[str]:
    """Every log line that holds an issued key, a key's secret half, a deployment secret
    or anything shaped like a key."""
    halves = {key.split("_", 2)[2] for key in _issued}
    deployment = {s.decode("latin-1") for s in _secrets}
    for line, tokens in _recorder.suspects:
        if _KEY_SHAPE.search(line) or any(
                _holds(token, halves) or any(d in token for d in deployment)
                for token in tokens):
            yield line


def _holds(token: str, halves: set[str]) -> bool:
    return any(token[i:i + 43] in halves for i in range(len(token) - 42))


@provider
def _summary(config: pytest.Config) -> list[Line]:
    found = list(leaks())
    if found:
        return [Line("secrets in logs",
                     f"SECRETS IN LOGS: {len(found)} log line(s) hold a key or secret, "
                     f"first: {found[0][:200]!r}", failed=True)]
    return [Line("secrets in logs",
                 f"{len(_issued)} keys issued and {len(_secrets)} deployment secrets, "
                 f"{_recorder.seen} log lines scanned, 0 found")]
