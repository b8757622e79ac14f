"""Turning results and errors into HTTP responses — the one edge where errors meet the wire."""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse

from nexus.context import current_request_id
from nexus.errors import InternalError, NexusError, RateLimitedError, error_payload
from nexus.rpc.wire import dumps

__all__ = [
    "JSONRPC_APPLICATION_ERROR", "NexusJSONResponse", "error_response", "result_response",
]

logger = logging.getLogger("nexus.server")

JSONRPC_PARSE_ERROR = -32700
JSONRPC_INVALID_REQUEST = -32600
JSONRPC_APPLICATION_ERROR = -32000


class NexusJSONResponse(JSONResponse):
    """JSON by :func:`nexus.rpc.wire.dumps`: bytes as base64 objects, and any string —
    even one a client sent with a lone surrogate — can be put on the wire."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def result_response(result: Any, request_id: Any) -> JSONResponse:
    return NexusJSONResponse({"jsonrpc": "2.0", "result": result, "id": request_id})


def error_response(exc: BaseException, request_id: Any = None, *,
                   rpc_code: int = JSONRPC_APPLICATION_ERROR) -> JSONResponse:
    """A JSON-RPC error body with the error's HTTP status. Unknown exceptions become an
    opaque ``internal`` error; their details go to the log, never to the client."""
    if not isinstance(exc, NexusError):
        logger.error("unhandled error (request_id=%s)", current_request_id.get(),
                     exc_info=exc)
        exc = InternalError(f"internal error; quote request id {current_request_id.get()} "
                            "to the operator")
    data = error_payload(exc)
    data["request_id"] = current_request_id.get()
    headers = {"X-Nexus-Error": exc.code}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(int(exc.details.get("retry_after", 1)))
    body = {"jsonrpc": "2.0", "error": {"code": rpc_code, "message": exc.message, "data": data},
            "id": request_id}
    return NexusJSONResponse(body, status_code=exc.http_status, headers=headers)
