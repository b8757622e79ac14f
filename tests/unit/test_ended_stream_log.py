"""A response the service ends mid-body is logged as one warning; a bug keeps its trace."""

from __future__ import annotations

import logging
import sys

from nexus.errors import InternalError, NexusError, NexusPermissionError
from nexus.logs import EndedStreamFilter


def _uvicorn_record(error: Exception) -> logging.LogRecord:
    try:
        raise error
    except Exception:  # noqa: BLE001 - the record uvicorn writes for an app exception
        info = sys.exc_info()
    return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 0,
                             "Exception in ASGI application", (), info)


def test_a_nexus_error_mid_stream_is_one_warning_line() -> None:
    record = _uvicorn_record(NexusPermissionError("permission denied: /tenants/a/x"))
    assert EndedStreamFilter().filter(record)
    assert record.levelname == "WARNING" and record.exc_info is None
    assert record.getMessage() == ("response ended early: permission_denied: "
                                   "permission denied: /tenants/a/x")


def test_an_internal_error_or_a_crash_keeps_its_stack_trace() -> None:
    for error in (InternalError("boom"), RuntimeError("boom")):
        record = _uvicorn_record(error)
        assert EndedStreamFilter().filter(record)
        assert record.levelname == "ERROR" and record.exc_info is not None
    assert issubclass(InternalError, NexusError)
