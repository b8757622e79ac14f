"""Type confusion over every RPC method: wrong types, ``None``, huge numbers, long strings,
deep nesting, huge lists, bools for ints and non-finite floats, sent over HTTP as the
system administrator, a tenant administrator and a member, on both backends.

Every answer must be a 4xx carrying an error code (never a 500); where the parameter's
annotation is typed, the code is ``invalid_argument`` and the details name the parameter.
The default run samples three wrong values per parameter (rotating through the set);
the full cross product is ``@pytest.mark.slow``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from nexus.rpc import METHODS
from nexus.rpc.params import checker_for
from nexus.server import create_app
from nexus.service import NexusService, bootstrap
from nexus.settings import Settings
from nexus.types import Principal

from .bola_world import Unlimited, scratch_directory, truncate_all

ROOT = Principal.local_admin()
ROLES = ("admin", "tenant_admin", "member")


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _wrong_values(annotation_schema: dict[str, Any]) -> list[tuple[str, Any]]:
    """Values wrong for almost any annotation; the first one is wrong for its type.
    Nesting is 50 deep: past the parameter bound (32), inside the envelope's (64)."""
    kinds = {annotation_schema.get("type")} | {
        branch.get("type") for branch in annotation_schema.get("anyOf", [])}
    wrong_type: Any = "12345" if kinds & {"integer", "number", "boolean"} else 12345
    return [("wrong_type", wrong_type), ("none", None), ("huge_int", 10**30),
            ("long_string", "x" * 100_000), ("deep_list", _nested(50)),
            ("deep_dict", {"a": _nested(50)}), ("many_items", [0] * 100_000),
            ("bool", True), ("nan", float("nan")), ("inf", float("inf"))]


def _cases(service: NexusService, full: bool) -> list[tuple[str, str, str, Any, bool]]:
    """``(method, param, label, value, typed)``; ``typed``: the parameter has a real type."""
    cases = []
    index = 0
    for name, spec in METHODS.items():
        if spec.streaming:
            continue
        area, attr = spec.target.split(".")
        checker = checker_for(name, getattr(type(getattr(service, area)), attr))
        for param, adapter in checker.adapters.items():
            values = _wrong_values(checker.json_schema(param))
            chosen = values if full else [values[0], *(
                values[1 + (index + k) % (len(values) - 1)] for k in range(2))]
            index += 1
            cases.extend((name, param, label, value, adapter is not None)
                         for label, value in chosen if not _right(adapter, param, label, value))
    return cases


def _right(adapter: Any, param: str, label: str, value: Any) -> bool:
    """``None`` and ``True`` are wrong values only where the annotation does not allow
    them; a huge offset or length is clamped by the service (a read past the end is
    empty), not refused."""
    if label == "huge_int":
        return param in ("offset", "length")
    if label not in ("none", "bool"):
        return False
    if adapter is None:
        return True
    try:
        adapter.validate_python(value)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    if url is not None:
        truncate_all(url)
    with scratch_directory(tmp_path_factory.mktemp("tc"), "nexus-types-") as directory:
        service: NexusService = bootstrap(Settings(data_dir=directory, database_url=url))
        service.tenants._limiter = Unlimited()  # noqa: SLF001 - thousands of calls
        service.tenants.create_tenant(ROOT, "acme", plan="enterprise")
        service.rebac.rebac_create(ROOT, ("user", "alice"), "owner", ("file", "/tenants/acme"))
        service.rebac.rebac_create(ROOT, ("user", "bob"), "can_read",
                                   ("file", "/tenants/acme/shared"))
        service.files.write(ROOT, "/tenants/acme/shared/a.txt", b"content")
        keys = {
            "admin": service.keys.admin_create_key(ROOT, "root", "tc", is_admin=True),
            "tenant_admin": service.keys.admin_create_key(ROOT, "alice", "tc",
                                                          tenant_id="acme"),
            "member": service.keys.admin_create_key(ROOT, "bob", "tc", tenant_id="acme"),
        }
        client = TestClient(create_app(service=service), raise_server_exceptions=False)
        try:
            yield {"client": client, "service": service,
                   "keys": {k: v["api_key"] for k, v in keys.items()}}
        finally:
            client.close()
            service.close()
            if url is not None:
                truncate_all(url)


def _sweep(world: dict[str, Any], full: bool) -> None:
    failures: list[str] = []
    for method, param, label, value, typed_param in _cases(world["service"], full):
        for role in ROLES:
            response = world["client"].post(
                f"/api/nfs/{method}",
                # json.dumps writes NaN/Infinity literals, which httpx's json= refuses.
                content=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                    "params": {param: value}}),
                headers={"Authorization": f"Bearer {world['keys'][role]}",
                         "Content-Type": "application/json"})
            where = f"{method}.{param}={label} as {role}: {response.status_code}"
            body = response.json()
            error = body.get("error") if isinstance(body, dict) else None
            data = (error or {}).get("data") or {}
            if not 400 <= response.status_code < 500 or not data.get("code"):
                failures.append(f"{where} {body}"[:300])
                continue
            # Bounds hold for every parameter; a wrong type only where one is declared.
            typed = label in {"huge_int", "long_string", "deep_list", "deep_dict",
                              "many_items", "nan", "inf"} or (
                label == "wrong_type" and typed_param)
            # A bad path is an invalid_path (a kind of invalid_argument), as it always was.
            wanted = "invalid_path" if param in {"path", "src", "dst"} else "invalid_argument"
            if typed and param != "model" and data.get("code") != wanted:
                if data.get("code") != "rate_limited":
                    failures.append(f"{where} {data}"[:300])
                continue
            details = data.get("details", {})
            # A bad path string is refused by paths.normalize, which names its rule.
            named = details.get("param") == param or (
                wanted == "invalid_path" and "rule" in details)
            if typed and param != "model" and not named:
                failures.append(f"{where} unnamed {data}"[:300])
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} failures)"


def test_every_parameter_refuses_wrong_types(world: dict[str, Any]) -> None:
    _sweep(world, full=False)


@pytest.mark.slow
def test_every_parameter_refuses_every_wrong_value(world: dict[str, Any]) -> None:
    _sweep(world, full=True)
