"""CoherentCache: the cache tenant states and API keys share."""

from __future__ import annotations

from nexus.service.coherence import Coherence, CoherentCache


def test_a_load_begun_before_a_forget_does_not_store_its_older_value() -> None:
    cache: CoherentCache[str, str] = CoherentCache(Coherence(), ttl=60)

    def racing_load(key: str) -> str:
        cache.forget(key)  # the change commits (and is forgotten) while this load reads
        return "active"  # what the database said before the change

    assert cache.get("acme", racing_load) == "active"
    assert cache.get("acme", lambda _key: "suspended") == "suspended"


def test_entries_expire_and_missing_ones_are_kept_only_when_asked() -> None:
    now = [0.0]
    keys: CoherentCache[str, str] = CoherentCache(Coherence(), ttl=1.0, clock=lambda: now[0])
    assert keys.get("k", lambda _key: "v1") == "v1"
    assert keys.get("k", lambda _key: "v2") == "v1"  # cached
    now[0] = 1.5
    assert keys.get("k", lambda _key: "v2") == "v2"  # expired
    assert keys.get("unknown", lambda _key: None) is None
    assert keys.get("unknown", lambda _key: "now there") == "now there"  # None not kept
    states: CoherentCache[str, str] = CoherentCache(Coherence(), ttl=1.0,
                                                    clock=lambda: now[0], keep_missing=True)
    assert states.get("gone", lambda _key: None) is None
    assert states.get("gone", lambda _key: "back") is None  # "absent" is kept
    assert states.get("gone", lambda _key: "back", fresh=True) == "back"


def test_the_cache_is_bounded() -> None:
    cache: CoherentCache[int, int] = CoherentCache(Coherence(), size=10)
    for i in range(25):
        cache.get(i, lambda key: key)
    assert len(cache._entries) <= 10
