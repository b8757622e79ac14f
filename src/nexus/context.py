"""The one context-local we allow: who is on the other end of the current request.

Set by the server's middleware, read by the audit log and the error responses. In-process
calls carry the defaults.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["client_address", "current_request_id"]

current_request_id: ContextVar[str] = ContextVar("nexus_request_id", default="-")
client_address: ContextVar[str] = ContextVar("nexus_client_address", default="in-process")
