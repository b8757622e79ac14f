"""``POST /api/nfs/{method}``: JSON-RPC 2.0 over the dispatch table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from nexus.errors import InvalidArgumentError, NexusError
from nexus.rpc import METHODS, decode_value, dispatch, encode_value, to_plain
from nexus.server.credentials import authenticate, bearer_token
from nexus.server.responses import (
    JSONRPC_INVALID_REQUEST,
    JSONRPC_PARSE_ERROR,
    error_response,
    result_response,
)

if TYPE_CHECKING:
    from nexus.service import NexusService

__all__ = ["MAX_RPC_BODY", "rpc_endpoint"]

#: JSON bodies carry small payloads only; large content uses /api/fs/content.
MAX_RPC_BODY = 64 * 1024 * 1024


class BodyTooLarge(InvalidArgumentError):
    """The request body exceeds the limit."""

    http_status = 413


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body larger than {limit} bytes; "
                           "upload content with PUT /api/fs/content")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _call(service: NexusService, api_key: str | None, method: str, params: Any) -> Any:
    # Authentication and the call share one worker thread: one hop off the event loop.
    principal = authenticate(service, api_key)
    return encode_value(to_plain(dispatch(service, principal, method, decode_value(params))))


async def rpc_endpoint(request: Request) -> JSONResponse:
    """Call ``method`` with the envelope's ``params`` as the key's principal."""
    method = request.path_params["method"]
    service: NexusService = request.app.state.service
    try:
        body = await read_limited(request, MAX_RPC_BODY)
    except NexusError as exc:
        return error_response(exc)
    try:
        envelope = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        return error_response(InvalidArgumentError("malformed JSON body"),
                              rpc_code=JSONRPC_PARSE_ERROR)
    if not isinstance(envelope, dict):
        return error_response(InvalidArgumentError("the body must be a JSON-RPC object"),
                              rpc_code=JSONRPC_INVALID_REQUEST)
    request_id = envelope.get("id")
    params = envelope.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return error_response(InvalidArgumentError("params must be an object"), request_id,
                              rpc_code=JSONRPC_INVALID_REQUEST)
    spec = METHODS.get(method)
    if spec is not None and spec.streaming:
        return error_response(InvalidArgumentError(
            f"{method} streams content: use GET /api/fs/content"), request_id)
    api_key = bearer_token(request)
    try:
        result = await run_in_threadpool(_call, service, api_key, method, params)
    except Exception as exc:  # noqa: BLE001 - every error becomes a response
        return error_response(exc, request_id)
    return result_response(result, request_id)

