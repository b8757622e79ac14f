"""What the async client adds to the client suite's guarantees (which it passes through
tests/async_clients.BlockingClient): the same surface as the sync client, async
iterators in and out, and many concurrent calls from one event loop with no thread per
call over HTTP."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import nexus
from nexus import AsyncNexusClient, NexusClient
from nexus.client import AsyncLocalTransport, LocalTransport
from nexus.service import NexusService
from nexus.types import Principal
from tests.serving import NexusProcess, tenant_key

_OWN = {"aclose", "close", "__aenter__", "__aexit__"}


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in inspect.getmembers(cls)
            if not name.startswith("_") and callable(member)}


def test_the_async_client_has_every_sync_method_as_a_coroutine() -> None:
    sync, concurrent = _public(NexusClient), _public(AsyncNexusClient)
    assert set(sync) - {"close"} <= set(concurrent) - _OWN | {"close"}
    for name, signature in sync.items():
        method = getattr(AsyncNexusClient, name)
        assert inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method), name
        assert list(inspect.signature(method).parameters) == list(signature.parameters), name
        for param in signature.parameters.values():
            assert inspect.signature(method).parameters[param.name].default == param.default


def _embedded(service: NexusService) -> AsyncNexusClient:
    return AsyncNexusClient(AsyncLocalTransport(LocalTransport(
        service, Principal.local_admin(), owns_service=False)))


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


def test_async_iterators_in_and_out_embedded(service: NexusService) -> None:
    async def main() -> None:
        async with _embedded(service) as client:
            info = await client.write("/tenants/t/big.bin", _chunks(b"a" * 100_000,
                                                                    b"b" * 100_000))
            assert info["size"] == 200_000
            stream = await client.read_stream("/tenants/t/big.bin", offset=99_999, length=2)
            assert b"".join([chunk async for chunk in stream]) == b"ab"
            await client.append("/tenants/t/big.bin", _chunks(b"c"))
            assert (await client.stat("/tenants/t/big.bin"))["size"] == 200_001
            names = [entry["name"] async for entry in client.iter_list("/tenants/t")]
            assert names == ["big.bin"]
            with pytest.raises(nexus.NexusFileNotFoundError):
                await client.read_stream("/tenants/t/missing")

    asyncio.run(main())


def test_a_stream_abandoned_half_way_is_closed(service: NexusService) -> None:
    async def main() -> None:
        async with _embedded(service) as client:
            await client.write("/tenants/t/f.bin", b"x" * (3 * 1024 * 1024))
            stream = await client.read_stream("/tenants/t/f.bin")
            async for _chunk in stream:
                break
            await stream.aclose()  # type: ignore[attr-defined]
            assert await client.read("/tenants/t/f.bin", length=1) == b"x"

    asyncio.run(main())


def test_100_concurrent_calls_over_http_use_no_thread_per_call(
        tmp_path: Path, database_url: str | None) -> None:
    server = NexusProcess(tmp_path / "data", database_url, log=tmp_path / "serve.log")
    try:
        admin = server.client()
        admin.create_tenant("acme", plan="enterprise")  # a burst of 1,000 requests
        key = tenant_key(admin, "acme", "alice", owner=True)
        admin.write("/tenants/acme/a.txt", b"hello")
        # Calls, not downloads: a tenant may have only 8 downloads open at once.

        async def main() -> tuple[int, int, list[dict]]:
            async with nexus.connect_async(config={"url": server.url,
                                                   "api_key": key}) as client:
                await client.stat("/tenants/acme/a.txt")  # the pool is warm
                before = threading.active_count()
                peak = before
                done = False

                async def watch() -> None:
                    nonlocal peak
                    while not done:
                        peak = max(peak, threading.active_count())
                        await asyncio.sleep(0)

                watcher = asyncio.create_task(watch())
                results = await asyncio.gather(*(client.stat("/tenants/acme/a.txt")
                                                 for _ in range(100)))
                done = True
                await watcher
                return before, peak, results

        before, peak, results = asyncio.run(main())
        assert [r["size"] for r in results] == [5] * 100
        assert peak <= before  # every call was a coroutine on this one thread
    finally:
        server.stop()
