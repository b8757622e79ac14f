"""Authorization denial of service (issue 14, "Budgets, not hopes"): a batch over the cap
is refused with a clear 4xx and its limit, on both databases and both transports."""

from __future__ import annotations

import pytest

import nexus


def test_check_batch_over_the_cap_is_refused(admin) -> None:  # noqa: ANN001
    admin.mkdir("/tenants/dosco")
    doc = ("file", "/tenants/dosco")
    item = (("user", "alice"), "can_read", doc)
    assert admin.rebac_check_batch([item] * 1_000) == [False] * 1_000
    with pytest.raises(nexus.LimitExceededError) as info:
        admin.rebac_check_batch([item] * 1_001)
    assert info.value.code == "limit_exceeded"
    assert int(info.value.details["limit"]) == 1_000
