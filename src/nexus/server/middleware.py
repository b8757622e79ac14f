"""Pure ASGI middleware: request ids and one log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nexus.context import RequestFacts, client_address, current_request_facts, current_request_id
from nexus.server.metrics import operation_of

__all__ = ["RequestIdMiddleware", "current_request_id"]

logger = logging.getLogger("nexus.access")


#: A client's own request id is kept only if it looks like one (a UUID, a ULID, a trace
#: id): no spaces, quotes or '=' that could forge fields of a log line or audit record.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,63}", re.ASCII)


class RequestIdMiddleware:
    """Gives each request an id (``X-Request-ID``, echoed back) and logs one line for it.

    The line holds operation, tenant, status, duration and request id — never headers
    or query strings, so never a key.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex[:16]
        token = current_request_id.set(request_id)
        client = scope.get("client")
        client_token = client_address.set(f"{client[0]}:{client[1]}" if client else "-")
        facts = RequestFacts()
        facts_token = current_request_facts.set(facts)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if logger.isEnabledFor(logging.INFO):
                _log_request(scope, facts, status, time.perf_counter() - started, request_id)
            current_request_id.reset(token)
            client_address.reset(client_token)
            current_request_facts.reset(facts_token)


def _log_request(scope: Scope, facts: RequestFacts, status: int, seconds: float,
                 request_id: str) -> None:
    operation = operation_of(scope)
    duration_ms = round(seconds * 1000, 2)
    logger.info("%s %s tenant=%s %d %.1fms request_id=%s", scope["method"], operation,
                facts.tenant, status, duration_ms, request_id,
                extra={"request_id": request_id, "http_method": scope["method"],
                       "path": scope["path"], "operation": operation,
                       "tenant": facts.tenant, "status": status, "duration_ms": duration_ms})
