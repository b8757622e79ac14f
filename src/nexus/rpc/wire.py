"""JSON encoding of RPC values: bytes travel as ``{"__bytes__": "<base64>"}``.

Shared by the server and the HTTP transport, so both sides agree by construction.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from nexus.errors import InvalidArgumentError

__all__ = ["decode_value", "encode_value"]

_BYTES = "__bytes__"


def encode_value(value: Any) -> Any:
    """Make ``value`` JSON-serialisable: bytes become base64 objects, tuples lists."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {k: encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """Undo :func:`encode_value`."""
    if isinstance(value, dict):
        if len(value) == 1 and _BYTES in value:
            raw = value[_BYTES]
            if not isinstance(raw, str):
                raise InvalidArgumentError("__bytes__ must hold a base64 string")
            try:
                return base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidArgumentError("__bytes__ is not valid base64") from None
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value
