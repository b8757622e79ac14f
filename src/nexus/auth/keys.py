"""API key format and verification material.

A key reads ``nx_<key id>_<secret>``: the id (12 hex digits) is visible in logs and
listings; the secret (32 random bytes, URL-safe base64) is shown once at creation and
stored only as ``HMAC-SHA256(deployment secret, secret)``, so a copy of the database
alone neither reveals nor lets anyone test keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

__all__ = ["KEY_PREFIX", "ParsedKey", "generate_key", "hash_secret", "parse_key"]

KEY_PREFIX = "nx_"
_KEY = re.compile(r"nx_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """The two halves of an API key. ``repr`` never shows the secret."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"ParsedKey(key_id={self.key_id!r}, secret=***)"


def generate_key() -> tuple[str, ParsedKey]:
    """A new random key: ``(full key text, its parts)``."""
    parsed = ParsedKey(secrets.token_hex(6), secrets.token_urlsafe(32))
    return f"{KEY_PREFIX}{parsed.key_id}_{parsed.secret}", parsed


def parse_key(text: str) -> ParsedKey | None:
    """Split a presented key; ``None`` if it is not shaped like one of ours."""
    match = _KEY.fullmatch(text.strip()) if isinstance(text, str) else None
    return ParsedKey(match.group(1), match.group(2)) if match else None


def hash_secret(secret: str, deployment_secret: bytes) -> str:
    """The stored verifier of a key secret."""
    return hmac.new(deployment_secret, secret.encode(), hashlib.sha256).hexdigest()
