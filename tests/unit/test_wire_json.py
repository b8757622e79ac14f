"""The response encoder: orjson, and the standard library for what orjson refuses, with
the same JSON either way once decoded."""

from __future__ import annotations

import json

import pytest

from nexus.rpc.wire import decode_value, dumps, encode_value


@pytest.mark.parametrize("value", [
    {"entries": [{"path": "/tenants/acme/é", "size": 3, "etag": None}], "next": None},
    {"content": b"\x00\xffbytes", "nested": [b"", (1, 2)]},
    {"lone": "\ud800surrogate"},  # orjson refuses: the fallback escapes it
    {"big": 2**70, "small": -(2**63) - 1},  # beyond 64 bits: the fallback, exact
    {"unicode": "日本語", "float": 1.5, "flag": True},
])
def test_dumps_round_trips_through_loads(value: object) -> None:
    body = dumps(value)
    assert isinstance(body, bytes)
    assert decode_value(json.loads(body)) == decode_value(json.loads(json.dumps(
        encode_value(value))))


def test_bytes_travel_as_base64_objects() -> None:
    assert json.loads(dumps({"b": b"hi"})) == {"b": {"__bytes__": "aGk="}}


def test_a_value_json_cannot_hold_is_refused_not_mangled() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_a_tenant_record_with_nan_is_refused(tmp_path) -> None:  # noqa: ANN001
    # NaN would read back as nan in process and null over HTTP: it is not stored at all.
    from nexus.client import LocalTransport, NexusClient
    from nexus.errors import InvalidArgumentError
    from nexus.service import bootstrap
    from nexus.settings import Settings
    from nexus.types import Principal

    svc = bootstrap(Settings(data_dir=tmp_path / "data"))
    try:
        admin = NexusClient(LocalTransport(svc, principal=Principal.local_admin(),
                                           owns_service=False))
        admin.create_tenant("acme")
        for constant in (b"NaN", b"Infinity", b"-Infinity"):
            with pytest.raises(InvalidArgumentError, match="NaN"):
                admin.write("/tenants/acme/.tenant.json",
                            b'{"settings": {"x": ' + constant + b'}}')
        assert admin.get_tenant("acme")["settings"] == {}
    finally:
        svc.close()
