"""Denials say nothing: a caller refused on a path learns only that it was refused.

An alias ``/tenants/<t>/shared/from-<s>/…`` is resolved to its source only for members
of ``<t>``. Everyone else is judged on the path as sent, so the denial can name neither
the share's source path nor whether ``<t>`` receives anything from ``<s>`` — and
"exists but forbidden" reads exactly like "does not exist", through every path-taking
file method, in-process and over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import nexus
from nexus.client import NexusClient

SOURCE = "/tenants/acme/projects/secret-merger/terms.txt"
ALIAS_DIR = "/tenants/beta/shared/from-acme"
ALIAS = f"{ALIAS_DIR}/terms.txt"

#: Path-taking file methods, each as (name, call) on a client.
CALLS: dict[str, Callable[[NexusClient, str], object]] = {
    "stat": lambda c, p: c.stat(p),
    "exists": lambda c, p: c.exists(p),
    "read": lambda c, p: c.read(p),
    "list": lambda c, p: c.list(p),
    "write": lambda c, p: c.write(p, b"x"),
    "append": lambda c, p: c.append(p, b"x"),
    "delete": lambda c, p: c.delete(p),
    "mkdir": lambda c, p: c.mkdir(p),
    "copy out": lambda c, p: c.copy(p, "/tenants/corp/loot.txt"),
    "rename out": lambda c, p: c.rename(p, "/tenants/corp/loot.txt"),
}


@pytest.fixture
def world(admin: NexusClient, tenant_user) -> dict[str, NexusClient]:
    for tenant, owner in (("acme", "alice"), ("beta", "bob"), ("corp", "cyd")):
        admin.create_tenant(tenant, plan="pro")
        admin.rebac_create(("user", owner), "owner", ("file", f"/tenants/{tenant}"))
    admin.write(SOURCE, b"confidential")
    alice = tenant_user("acme", "alice")
    alice.create_share("/tenants/acme/projects/secret-merger/terms.txt", "beta")
    return {"bob": tenant_user("beta", "bob"), "cyd": tenant_user("corp", "cyd")}


def _denial(call: Callable[[NexusClient, str], object], client: NexusClient,
            path: str) -> nexus.NexusPermissionError:
    with pytest.raises(nexus.NexusPermissionError) as caught:
        call(client, path)
    return caught.value


@pytest.mark.parametrize("method", list(CALLS))
def test_an_outsider_learns_nothing_from_another_tenants_aliases(world, method: str) -> None:  # noqa: ANN001
    cyd, call = world["cyd"], CALLS[method]
    real = _denial(call, cyd, ALIAS)                                    # an active share
    missing = _denial(call, cyd, f"{ALIAS_DIR}/no-such-file.txt")       # no such share
    nobody = _denial(call, cyd, "/tenants/beta/shared/from-zeta/terms.txt")  # no such source
    for denial, sent in ((real, ALIAS), (missing, f"{ALIAS_DIR}/no-such-file.txt"),
                         (nobody, "/tenants/beta/shared/from-zeta/terms.txt")):
        text = f"{denial} {denial.details}"
        assert "secret-merger" not in text and "/tenants/acme" not in text, text
        assert denial.details.get("path") in (sent, None), denial.details
    assert str(real).replace(ALIAS, "<p>") == str(missing).replace(
        f"{ALIAS_DIR}/no-such-file.txt", "<p>")


@pytest.mark.parametrize("path", [ALIAS_DIR, "/tenants/beta/shared/from-zeta"])
def test_an_outsider_cannot_list_or_stat_alias_directories(world, path: str) -> None:  # noqa: ANN001
    cyd = world["cyd"]
    for call in (CALLS["list"], CALLS["stat"]):
        denial = _denial(call, cyd, path)
        assert str(denial) == f"permission denied: can_read on {path}"


def test_members_still_reach_the_share_through_its_alias(world) -> None:  # noqa: ANN001
    bob = world["bob"]
    assert bob.read(ALIAS) == b"confidential"
    assert [e["name"] for e in bob.list(ALIAS_DIR)] == ["terms.txt"]
    denial = _denial(CALLS["write"], bob, ALIAS)  # a can_read share
    assert str(denial) == f"permission denied: can_write on {ALIAS}"
    assert "secret-merger" not in str(denial.details)
