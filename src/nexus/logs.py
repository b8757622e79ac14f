"""Log output of the server: ``text`` for people, ``json`` (one object per line) for
collectors. Configured once by ``nexus serve --log-level/--log-format``."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

from nexus.errors import InternalError, NexusError

__all__ = ["ACCESS_FIELDS", "EndedStreamFilter", "JsonFormatter", "LogFormat", "configure_logging"]

LogFormat = Literal["text", "json"]

#: Structured fields the access log attaches to its records (``extra=``).
ACCESS_FIELDS = ("request_id", "http_method", "path", "operation", "tenant", "status",
                 "duration_ms")

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and access fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


class EndedStreamFilter(logging.Filter):
    """One line, not a stack trace, for a response the service ended mid-body.

    A download whose share is revoked or whose key expires while it streams (the
    re-checks of ``service/streams.py``) can only end by raising after its headers went
    out; uvicorn then closes the connection — the client sees the body cut short and
    asks why — and logs the exception as a crash. A :class:`NexusError` there is no
    crash: it is the answer, so it is logged as a warning naming its code.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        # An internal error is a bug, whose stack trace is the point of the record.
        if isinstance(error, NexusError) and not isinstance(error, InternalError):
            record.msg, record.args = "response ended early: %s: %s", (error.code, error)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(level: str = "info", fmt: LogFormat = "text") -> None:
    """Route every logger (ours, uvicorn's) to stderr at ``level`` in ``fmt``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own loggers would otherwise print in their own format, twice.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # nexus.access writes the access line (with tenant and request id); uvicorn's would
    # double it. uvicorn switches its own off only where it configures logging itself,
    # which a --workers process does before this runs.
    logging.getLogger("uvicorn.access").propagate = False
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, EndedStreamFilter) for f in error_log.filters):
        error_log.addFilter(EndedStreamFilter())
    logging.getLogger("alembic").setLevel(logging.WARNING)
