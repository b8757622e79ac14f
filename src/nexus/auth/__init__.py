"""Identity: API keys (format, hashing) and the deployment secret that keys are hashed under."""

from __future__ import annotations

from nexus.auth.keys import KEY_PREFIX, ParsedKey, generate_key, hash_secret, parse_key
from nexus.auth.secret import load_or_create_secret

__all__ = [
    "KEY_PREFIX",
    "ParsedKey",
    "generate_key",
    "hash_secret",
    "load_or_create_secret",
    "parse_key",
]
