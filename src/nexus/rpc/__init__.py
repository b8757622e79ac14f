"""The RPC method table and dispatch, shared by the server and the local transport."""

from __future__ import annotations

from nexus.rpc.dispatch import METHODS, RpcMethod, dispatch, to_plain
from nexus.rpc.wire import decode_value, encode_value

__all__ = ["METHODS", "RpcMethod", "decode_value", "dispatch", "encode_value", "to_plain"]
