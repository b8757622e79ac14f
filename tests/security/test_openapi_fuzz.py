"""Schemathesis against the app's own ``/openapi.json``: no 5xx, and every response fits
the advertised schema — with a tenant key and with the system administrator's key.

The document (``nexus/server/openapi.py``) describes one ``POST /api/nfs/<method>``
operation per RPC method (the JSON-RPC envelope with a typed ``params`` object derived
from the service method's signature; results and the error envelope typed, error codes
enumerated), the generic ``/api/nfs/{method}``, the streaming ``GET``/``PUT``/``POST
/api/fs/content``, ``/health`` and ``/metrics``. Each operation gets a few positive
examples (valid by the schema) and a few negative ones (violating it); every request
carries ``Authorization: Bearer <key>``.

Examples are bounded (``EXAMPLES``/``NEGATIVE_EXAMPLES`` per operation and role, fixed
seed) so the module stays within CI's budget; ``NEXUS_OPENAPI_FUZZ_EXAMPLES`` raises it
for a deeper local run. Both backends by default; ``NEXUS_OPENAPI_FUZZ_BACKENDS=sqlite``
runs one.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from nexus.rpc import METHODS
from nexus.server import create_app
from nexus.service import NexusService, bootstrap
from nexus.settings import Settings
from nexus.types import Principal

from .bola_world import Unlimited, scratch_directory, truncate_all

ROOT = Principal.local_admin()
EXAMPLES = int(os.environ.get("NEXUS_OPENAPI_FUZZ_EXAMPLES", "4"))
NEGATIVE_EXAMPLES = max(1, EXAMPLES // 2)
BACKENDS = [b for b in os.environ.get("NEXUS_OPENAPI_FUZZ_BACKENDS",
                                                  "sqlite,postgresql").split(",") if b]
CHECKS = [not_a_server_error, response_schema_conformance]
ROLES = ["tenant", "admin"]  # the tenant first: the administrator's fuzz may suspend acme


def _into_acme(case: Any) -> Any:
    """Aim every other generated path into acme (``/tenants/acme/<generated>``), so that
    the calls also get past path validation and permission checks and exercise the
    operations themselves; the rest stay as generated."""
    params = case.body.get("params") if isinstance(case.body, dict) else None
    targets = [params] if isinstance(params, dict) else []
    if isinstance(case.query, dict):
        targets.append(case.query)
    for target in targets:
        for key in ("path", "src", "dst"):
            value = target.get(key)
            if isinstance(value, str) and len(value) % 2 == 0:
                target[key] = "/tenants/acme/" + value.lstrip("/")
    return case


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_world(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    backend = request.param
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    if url is not None:
        truncate_all(url)
    with scratch_directory(tmp_path_factory.mktemp("oa"), "nexus-openapi-") as directory:
        service: NexusService = bootstrap(Settings(data_dir=directory, database_url=url))
        service.tenants._limiter = Unlimited()  # noqa: SLF001 - see Unlimited
        for tenant in ("acme", "beta"):
            service.tenants.create_tenant(ROOT, tenant, plan="enterprise")
        service.rebac.rebac_create(ROOT, ("user", "alice"), "owner", ("file", "/tenants/acme"))
        for path in ("/tenants/acme/a.txt", "/tenants/acme/docs/b.txt", "/tenants/beta/c.txt"):
            service.files.write(ROOT, path, b"content")
        keys = {
            "tenant": service.keys.admin_create_key(ROOT, "alice", "fuzz",
                                                    tenant_id="acme")["api_key"],
            "admin": service.keys.admin_create_key(ROOT, "root", "fuzz",
                                                   is_admin=True)["api_key"],
        }
        app = create_app(service=service)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        try:
            yield {"schema": schema, "keys": keys, "app": app, "backend": backend}
        finally:
            service.close()
            if url is not None:
                truncate_all(url)


def test_the_schema_describes_every_operation(fuzz_world: dict[str, Any]) -> None:
    """What makes the fuzz meaningful: typed bodies, parameters and responses."""
    document = fuzz_world["app"].openapi()
    paths = document["paths"]
    for name, spec in METHODS.items():
        if spec.streaming:
            continue
        operation = paths[f"/api/nfs/{name}"]["post"]
        params = operation["requestBody"]["content"]["application/json"]["schema"][
            "properties"]["params"]
        assert params["type"] == "object", name
        assert "default" in operation["responses"], name
    write = paths["/api/nfs/write"]["post"]["requestBody"]["content"]["application/json"]
    assert write["schema"]["properties"]["params"]["required"] == ["path", "data"]
    # The bounds the edge enforces are the ones the document states (so the negative
    # examples include over-long strings and wrong types for every parameter).
    audit = paths["/api/nfs/audit_query"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["params"]["properties"]
    assert audit["tenant_id"]["type"] == "string" and audit["tenant_id"]["maxLength"] == 4096
    assert {"type": "integer"} in audit["limit"].get("anyOf", [audit["limit"]])
    assert {p["name"] for p in paths["/api/fs/content"]["get"]["parameters"]} >= {"path"}
    assert paths["/api/fs/content"]["put"]["requestBody"]["content"]
    codes = document["components"]["schemas"]["RpcError"]["properties"]["error"][
        "properties"]["data"]["properties"]["code"]["enum"]
    assert {"invalid_path", "permission_denied", "internal"} <= set(codes)
    assert "/api/nfs/{method}" in paths and "/health" in paths


@pytest.mark.parametrize("role", ROLES)
def test_no_server_errors_and_responses_fit_the_schema(
        fuzz_world: dict[str, Any], role: str,
        stress_report: Callable[[str], None]) -> None:
    schema = fuzz_world["schema"]
    headers = {"Authorization": f"Bearer {fuzz_world['keys'][role]}"}
    statuses: Counter[int] = Counter()
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, count in ((GenerationMode.POSITIVE, EXAMPLES),
                            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):

            @settings(max_examples=count, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])
            @given(case=operation.as_strategy(generation_mode=mode).map(_into_acme))
            def run(case: Any) -> None:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                statuses[response.status_code] += 1

            try:
                run()
            except Unsatisfiable:
                # Nothing to violate (no parameters, no body): no negative examples exist.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure
                failures[f"{operation.label} [{mode.value}]"] = str(exc)[:1500]
    stress_report(f"openapi fuzz [{fuzz_world['backend']}, {role} key]: {operations} "
                  f"operations, {sum(statuses.values())} requests, statuses "
                  f"{dict(sorted(statuses.items()))}, {len(failures)} failing operations")
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert operations >= len(METHODS) + 4
    assert not [s for s in statuses if s >= 500]
    assert sum(n for s, n in statuses.items() if 200 <= s < 300) > 0  # not all refusals
