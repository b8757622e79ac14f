"""The context-locals we allow: who is on the other end of the current request.

Set by the server's middleware, read by the audit log, the error responses and the access
log. In-process calls carry the defaults.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["RequestFacts", "client_address", "current_request_facts", "current_request_id",
           "via_signed_url"]

current_request_id: ContextVar[str] = ContextVar("nexus_request_id", default="-")
client_address: ContextVar[str] = ContextVar("nexus_client_address", default="in-process")
#: The request came through a signed URL: its holder acts as the key that signed it, and
#: the audit log says so.
via_signed_url: ContextVar[bool] = ContextVar("nexus_via_signed_url", default=False)


@dataclass
class RequestFacts:
    """What the access log says about a request, learned while it is handled.

    Mutable on purpose: endpoints run in worker threads on a *copy* of the context, so
    they fill in the object the middleware created rather than setting a variable.
    """

    tenant: str = "-"


current_request_facts: ContextVar[RequestFacts | None] = ContextVar("nexus_request_facts",
                                                                    default=None)
