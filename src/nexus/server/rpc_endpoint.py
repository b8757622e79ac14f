"""``POST /api/nfs/{method}``: JSON-RPC 2.0 over the dispatch table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from nexus.errors import InvalidArgumentError
from nexus.rpc import METHODS, decode_value, dispatch, to_plain
from nexus.server.admission import BodyBudget, next_chunk, stream_bucket, whole_body
from nexus.server.credentials import authenticate, bearer_token
from nexus.server.responses import (
    JSONRPC_INVALID_REQUEST,
    JSONRPC_PARSE_ERROR,
    error_response,
    result_response,
)

if TYPE_CHECKING:
    from nexus.service import NexusService
    from nexus.types import Principal

__all__ = ["MAX_JSON_DEPTH", "MAX_RPC_BODY", "PREAUTH_BODY", "rpc_endpoint"]

#: JSON bodies carry small payloads only; large content uses /api/fs/content.
MAX_RPC_BODY = 64 * 1024 * 1024

#: No method's parameters nest this deep; a bound keeps deep input a 400, never a
#: RecursionError in the decoder or in the value decoding that follows it.
MAX_JSON_DEPTH = 64


class BodyTooLarge(InvalidArgumentError):
    """The request body exceeds the limit."""

    http_status = 413


async def read_limited(request: Request, limit: int, budget: BodyBudget) -> bytes:
    """The body, at most ``limit`` bytes (else 413), arriving within ``budget`` (else 408)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body larger than {limit} bytes; "
                           "upload content with PUT /api/fs/content")
    if _declared_small(request):
        # A small body (most calls) is one or two chunks: one deadline for all of it costs
        # one cancel scope instead of one per chunk (a tenth of a stat's server time).
        body = await whole_body(request, budget)
        if len(body) > limit:
            raise BodyTooLarge(f"request body larger than {limit} bytes")
        return body
    chunks, size = [], 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await next_chunk(stream, budget)
        except StopAsyncIteration:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body larger than {limit} bytes")
        chunks.append(chunk)


def _too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    # Iterative, so the check itself cannot overflow the stack.
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


#: A body up to this size is read before its key is checked, so the key check and the
#: call share one worker-thread hop; a larger (or undeclared) one only after the check.
PREAUTH_BODY = 64 * 1024


def _declared_small(request: Request) -> bool:
    declared = request.headers.get("content-length")
    return declared is not None and declared.isascii() and declared.isdigit() \
        and int(declared) <= PREAUTH_BODY


def _call(service: NexusService, principal: Principal | None, api_key: str | None,
          method: str, params: Any) -> Any:
    if principal is None:
        principal = authenticate(service, api_key)
    spec = METHODS.get(method)
    if spec is not None and spec.streaming:
        raise InvalidArgumentError(f"{method} streams content: use GET /api/fs/content")
    # Bytes in the result are encoded with the response (nexus.rpc.wire.dumps).
    return to_plain(dispatch(service, principal, method, decode_value(params)))


async def rpc_endpoint(request: Request) -> JSONResponse:
    """Call ``method`` with the envelope's ``params`` as the key's principal."""
    method = request.path_params["method"]
    service: NexusService = request.app.state.service
    api_key = bearer_token(request)
    # The key is checked before a large body is read: an anonymous caller costs at most
    # PREAUTH_BODY bytes of buffer, and a small call still pays one thread hop, not two.
    # A large body is a stream like an upload: it holds one of its tenant's stream slots
    # while it arrives (no thread: it is read on the event loop).
    principal: Principal | None = None
    small = _declared_small(request)
    budget: BodyBudget = request.app.state.body_budget()
    try:
        if small:
            body = await read_limited(request, PREAUTH_BODY, budget)
        else:
            principal = await run_in_threadpool(authenticate, service, api_key)
            with request.app.state.admission.acquire(stream_bucket(principal)):
                body = await read_limited(request, MAX_RPC_BODY, budget)
    except Exception as exc:  # noqa: BLE001 - every error becomes a response
        response = error_response(exc)
        response.headers["Connection"] = "close"  # the rest of the body stays unread
        return response
    try:
        envelope = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        return error_response(InvalidArgumentError("malformed JSON body"),
                              rpc_code=JSONRPC_PARSE_ERROR)
    if _too_deep(envelope):
        return error_response(InvalidArgumentError(
            f"JSON nested deeper than {MAX_JSON_DEPTH} levels"), rpc_code=JSONRPC_PARSE_ERROR)
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
    try:
        result = await run_in_threadpool(_call, service, principal, api_key, method, params)
    except Exception as exc:  # noqa: BLE001 - every error becomes a response
        return error_response(exc, request_id)
    return result_response(result, request_id)

