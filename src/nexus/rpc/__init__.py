"""The RPC method table and dispatch, shared by the server and the local transport."""

from __future__ import annotations

from nexus.rpc.dispatch import METHODS, RpcMethod, dispatch, to_plain

__all__ = ["METHODS", "RpcMethod", "dispatch", "to_plain"]
