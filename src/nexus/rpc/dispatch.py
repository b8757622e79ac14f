"""Method name → service callable, and the one function that calls through the table.

Each entry names a method of a per-area service (``"files.write"``); the parameters are
bound against that method's own signature, so the table never restates an argument list
and a wrong or missing parameter is an :class:`InvalidArgumentError`, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from nexus.errors import InvalidArgumentError
from nexus.rpc.params import checker_for

if TYPE_CHECKING:
    from nexus.service import NexusService
    from nexus.types import Principal

__all__ = ["METHODS", "RpcMethod", "dispatch", "to_plain"]


@dataclass(frozen=True, slots=True)
class RpcMethod:
    """One callable RPC method: ``target`` is ``"<service area>.<method>"``."""

    name: str
    target: str
    #: True if the method streams bytes (only the local transport passes streams through).
    streaming: bool = False


_TABLE = [
    RpcMethod("mkdir", "files.mkdir"),
    RpcMethod("rmdir", "files.rmdir"),
    RpcMethod("write", "files.write"),
    RpcMethod("write_many", "files.write_many"),
    RpcMethod("append", "files.append"),
    RpcMethod("read", "files.read"),
    RpcMethod("open_read", "files.open_read", streaming=True),
    RpcMethod("stat", "files.stat"),
    RpcMethod("exists", "files.exists"),
    RpcMethod("list", "files.list"),
    RpcMethod("delete", "files.delete"),
    RpcMethod("rename", "files.rename"),
    RpcMethod("copy", "files.copy"),
    RpcMethod("sign_url", "signing.sign"),
    RpcMethod("rebac_create", "rebac.rebac_create"),
    RpcMethod("rebac_delete", "rebac.rebac_delete"),
    RpcMethod("rebac_check", "rebac.rebac_check"),
    RpcMethod("rebac_check_batch", "rebac.rebac_check_batch"),
    RpcMethod("rebac_expand", "rebac.rebac_expand"),
    RpcMethod("rebac_list_tuples", "rebac.rebac_list_tuples"),
    RpcMethod("rebac_list_objects", "rebac.rebac_list_objects"),
    RpcMethod("rebac_list_subjects", "rebac.rebac_list_subjects"),
    RpcMethod("rebac_revision", "rebac.rebac_revision"),
    RpcMethod("rebac_write_model", "rebac.rebac_write_model"),
    RpcMethod("rebac_read_model", "rebac.rebac_read_model"),
    RpcMethod("admin_create_key", "keys.admin_create_key"),
    RpcMethod("admin_list_keys", "keys.admin_list_keys"),
    RpcMethod("admin_get_key", "keys.admin_get_key"),
    RpcMethod("admin_update_key", "keys.admin_update_key"),
    RpcMethod("admin_revoke_key", "keys.admin_revoke_key"),
    RpcMethod("create_tenant", "tenants.create_tenant"),
    RpcMethod("get_tenant", "tenants.get_tenant"),
    RpcMethod("list_tenants", "tenants.list_tenants"),
    RpcMethod("update_tenant", "tenants.update_tenant"),
    RpcMethod("get_usage", "tenants.get_usage"),
    RpcMethod("billing_preview", "tenants.billing_preview"),
    RpcMethod("tenant_health_metrics", "tenants.tenant_health_metrics"),
    RpcMethod("suspend_tenant", "tenants.suspend_tenant"),
    RpcMethod("reactivate_tenant", "tenants.reactivate_tenant"),
    RpcMethod("upgrade_tenant", "tenants.upgrade_tenant"),
    RpcMethod("cancel_tenant", "tenants.cancel_tenant"),
    RpcMethod("delete_tenant", "files.delete_tenant"),
    RpcMethod("audit_query", "audit.audit_query"),
    RpcMethod("audit_verify", "audit.audit_verify"),
    RpcMethod("audit_export", "audit.audit_export"),
    RpcMethod("export_tenant", "transfer.export_tenant"),
    RpcMethod("import_tenant", "transfer.import_tenant"),
    RpcMethod("create_share", "shares.create_share"),
    RpcMethod("list_shares", "shares.list_shares"),
    RpcMethod("revoke_share", "shares.revoke_share"),
]
METHODS = MappingProxyType({m.name: m for m in _TABLE})


def dispatch(service: NexusService, principal: Principal, method: str,
             params: dict[str, Any] | None) -> Any:
    """Call ``method`` for ``principal`` with keyword ``params``; return the raw result."""
    spec = METHODS.get(method)
    if spec is None:
        raise InvalidArgumentError(f"unknown method {method!r}", method=method)
    if params is not None and not isinstance(params, dict):
        raise InvalidArgumentError("params must be an object of named parameters")
    area, name = spec.target.split(".")
    handler = getattr(getattr(service, area), name)
    kwargs = dict(params or {})
    checker_for(method, handler.__func__).check(kwargs, principal)
    service.admit(principal)
    return handler(principal, **kwargs)


def to_plain(value: Any) -> Any:
    """Turn result dataclasses into dicts and lists, recursively (bytes stay bytes)."""
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value
