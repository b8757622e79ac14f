"""Signed URLs: one path, one method, for a while, as the key that signed it.

A signed URL lets a browser ``GET`` or ``PUT`` one file with no API key. It carries the
signer's key id and an HMAC-SHA256 over everything it grants (method, normalised path,
expiry, size cap, content type) and over the incarnation of the path's tenant, under a
key derived from the deployment secret. It grants nothing of its own: each use acts as
the signer, so it stops working when the key is revoked or expires, when the signer
loses the permission, when the tenant is suspended or deleted (a re-created tenant of
the same name is another incarnation), or when a tenant involved sets
``settings.allow_public_sharing`` to false — which also refuses signing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from nexus import paths
from nexus.errors import (
    AuthenticationError,
    InvalidArgumentError,
    NexusPermissionError,
)
from nexus.service.access import Action
from nexus.types import Principal, iso_time

if TYPE_CHECKING:
    from nexus.service.access import AccessGate
    from nexus.service.audit import AuditLog
    from nexus.service.files import FileService
    from nexus.service.keys import KeyService
    from nexus.service.tenant_state import TenantStates

__all__ = ["ROUTE", "SignedGrant", "SignedUrls"]

#: Where signed URLs point: ``/api/signed/<path>?method=…&expires=…&key=…&sig=…``.
ROUTE = "/api/signed"
METHODS = ("GET", "PUT")
_VERSION = b"nexus-signed-url-v1"
_MAX_CONTENT_TYPE = 255


@dataclass(frozen=True, slots=True)
class SignedGrant:
    """What a verified URL lets its holder do, as ``principal`` (the signer)."""

    principal: Principal
    method: str
    path: str
    expires: int
    max_size: int | None
    content_type: str | None


class SignedUrls:
    """Signs URLs for principals and verifies them for the server's signed routes."""

    def __init__(self, *, files: FileService, keys: KeyService, gate: AccessGate,
                 states: TenantStates,
                 audit: AuditLog, deployment_secret: bytes, max_lifetime: float,
                 public_url: str | None, clock: Callable[[], float] = time.time) -> None:
        self._files = files
        self._keys = keys
        self._gate = gate
        self._states = states
        self._audit = audit
        # A key of its own, so a signature can never be replayed as another HMAC of the
        # deployment secret (API key hashes are HMACs of it too).
        self._key = hmac.new(deployment_secret, _VERSION, hashlib.sha256).digest()
        self._max_lifetime = max_lifetime
        self._public_url = public_url
        self._clock = clock

    def sign(self, principal: Principal, path: str, method: str = "GET",
             expires_in: float = 3600, max_size: int | None = None,
             content_type: str | None = None) -> dict[str, Any]:
        """A URL for ``method`` on ``path``: ``{"url", "method", "path", "expires_at",
        "max_size", "content_type"}``; ``url`` is absolute when the deployment knows its
        public address, else relative to the server the caller reached."""
        method = _method(method)
        expires_in = _lifetime(expires_in, self._max_lifetime)
        if method == "GET" and (max_size is not None or content_type is not None):
            raise InvalidArgumentError("max_size and content_type limit uploads: sign a PUT")
        max_size = _size(max_size)
        content_type = _content_type(content_type)
        if principal.key_id is None:
            raise InvalidArgumentError(
                "a signed URL acts as the API key that signed it: open the client with an "
                "api_key (the local administrator has none)")
        path = paths.normalize(path)
        if method == "GET":  # a download of nothing is refused now, not at its first use
            self._files.stat(principal, path)
            resolved = self._files.resolve_alias(principal, path)
        else:
            resolved = self._files.authorize(principal, Action.WRITE, path)
        self._gate.require_public_sharing(principal, path, resolved, signing=True)
        expires = math.ceil(self._clock() + expires_in)
        signature = self._signature(method, path, expires, principal.key_id, max_size,
                                    content_type, self._incarnation(path))
        query = {"method": method, "expires": expires, "key": principal.key_id}
        if max_size is not None:
            query["max_size"] = max_size
        if content_type is not None:
            query["content_type"] = content_type
        query["sig"] = signature
        url = f"{ROUTE}{quote(path, safe='/')}?{urlencode(query, quote_via=quote)}"
        detail = f"{method} until {iso_time(expires)}"
        self._audit.record_now(principal, "url.sign", path, detail=detail)
        return {"url": (self._public_url or "") + url, "method": method, "path": path,
                "expires_at": iso_time(expires), "max_size": max_size,
                "content_type": content_type}

    def verify(self, method: str, path: str, query: Mapping[str, str]) -> SignedGrant:
        """The grant of a signed URL used with ``method``; :class:`AuthenticationError`
        if it was altered, has expired or its key is no longer live;
        :class:`NexusPermissionError` if it is for another method or its tenant stopped
        public sharing. The signer's permission is checked by the operation itself."""
        signed_method = query.get("method", "")
        expires_text, key_id, signature = (query.get(name, "") for name in
                                           ("expires", "key", "sig"))
        if not (signed_method and expires_text.isascii() and expires_text.isdigit()
                and key_id and signature) or len(expires_text) > 12:
            raise AuthenticationError("not a signed URL: it needs method, expires, key and "
                                      "sig (sign one with sign_url)")
        max_size_text = query.get("max_size")
        if max_size_text is not None and not (max_size_text.isascii()
                                              and max_size_text.isdigit()
                                              and len(max_size_text) <= 18):
            raise AuthenticationError("signed URL is invalid: max_size is not a size")
        max_size = None if max_size_text is None else int(max_size_text)
        content_type = query.get("content_type")
        path = paths.normalize(path)
        expected = self._signature(signed_method, path, int(expires_text), key_id,
                                   max_size, content_type, self._incarnation(path))
        if not hmac.compare_digest(expected, signature):
            raise AuthenticationError(
                "signed URL is invalid: its signature does not match (it was altered, or "
                "its tenant was deleted since it was signed)")
        if signed_method != method:
            raise NexusPermissionError(f"this URL was signed for {signed_method}, not "
                                       f"{method}", permission=signed_method)
        if int(expires_text) <= self._clock():
            raise AuthenticationError(f"signed URL expired at {iso_time(int(expires_text))}")
        principal = self._keys.principal_of_key(key_id)
        resolved = self._files.resolve_alias(principal, path)
        self._gate.require_public_sharing(principal, path, resolved, signing=False)
        return SignedGrant(principal, method, path, int(expires_text), max_size,
                           content_type)

    # -- internals -----------------------------------------------------------------------

    def _signature(self, method: str, path: str, expires: int, key_id: str,
                   max_size: int | None, content_type: str | None,
                   incarnation: str) -> str:
        fields = (method, path, str(expires), key_id,
                  "" if max_size is None else str(max_size), content_type or "", incarnation)
        message = b"\n".join([_VERSION, *(field.encode("utf-8", "surrogatepass")
                                          for field in fields)])
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def _incarnation(self, path: str) -> str:
        tenant = paths.tenant_of(path)
        return "" if tenant is None else (self._states.incarnation(tenant) or "gone")


def _method(method: Any) -> str:
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidArgumentError(f"method must be GET or PUT, not {method!r}",
                                   param="method")
    return method.upper()


def _lifetime(expires_in: Any, most: float) -> float:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) \
            or not math.isfinite(expires_in) or expires_in <= 0:
        raise InvalidArgumentError("expires_in must be a positive number of seconds",
                                   param="expires_in")
    if expires_in > most:
        raise InvalidArgumentError(
            f"expires_in may be at most {most:g} seconds on this deployment "
            "(nexus serve --signed-url-max-lifetime)", param="expires_in", limit=most)
    return float(expires_in)


def _size(max_size: Any) -> int | None:
    if max_size is None:
        return None
    if isinstance(max_size, bool) or not isinstance(max_size, int) or not \
            0 <= max_size < 2**63:
        raise InvalidArgumentError("max_size must be a number of bytes (0 or more)",
                                   param="max_size")
    return max_size


def _content_type(content_type: Any) -> str | None:
    if content_type is None:
        return None
    if not isinstance(content_type, str) or not content_type \
            or len(content_type) > _MAX_CONTENT_TYPE or not content_type.isascii() \
            or not content_type.isprintable():
        raise InvalidArgumentError("content_type must be a printable ASCII media type of "
                                   f"at most {_MAX_CONTENT_TYPE} characters",
                                   param="content_type")
    return content_type
