"""The API key of a request, and the principal it names.

Every endpoint authenticates through :func:`authenticate`, so the access log learns the
caller's tenant in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from nexus.context import current_request_facts
from nexus.types import Principal

if TYPE_CHECKING:
    from nexus.service import NexusService

__all__ = ["authenticate", "bearer_token"]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(service: NexusService, api_key: str | None) -> Principal:
    """The key's principal (raises ``AuthenticationError``); notes its tenant for the log."""
    principal = service.keys.authenticate(api_key)
    facts = current_request_facts.get()
    if facts is not None:
        facts.tenant = principal.log_label
    return principal
