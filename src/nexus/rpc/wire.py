"""JSON encoding of RPC values: bytes travel as ``{"__bytes__": "<base64>"}``.

Shared by the server and the HTTP transport, so both sides agree by construction.
:func:`dumps` is the one JSON encoder of responses: orjson (several times faster than the
standard library on a 1,000-entry listing), with the standard library as the fallback for
what orjson refuses — strings with lone surrogates, integers beyond 64 bits — escaped to
ASCII so that any string can be put on the wire. Bodies are decoded by the standard
library: orjson would read an integer beyond 64 bits as a float.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import orjson

from nexus.errors import InvalidArgumentError

__all__ = ["decode_value", "dumps", "encode_value"]

_BYTES = "__bytes__"
_SCALARS = frozenset({str, int, float, bool, type(None)})


def dumps(value: Any) -> bytes:
    """``value`` (plain data; bytes anywhere in it) as compact JSON bytes."""
    try:
        return orjson.dumps(value, default=_encode_default)
    except (orjson.JSONEncodeError, OverflowError):
        return json.dumps(encode_value(value), ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


def _encode_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def encode_value(value: Any) -> Any:
    """Make ``value`` JSON-serialisable: bytes become base64 objects, tuples lists."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _SCALARS else encode_value(v) for v in value]
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
