"""Concurrent callers: nothing lost, nothing interleaved, no spurious errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from nexus.client import NexusClient


@pytest.mark.parametrize("per_thread", [15, pytest.param(50, marks=pytest.mark.slow)])
def test_concurrent_appends_lose_nothing(admin: NexusClient, per_thread: int) -> None:
    path = "/tenants/acme/.audit/log.jsonl"

    def worker(thread: int) -> None:
        for i in range(per_thread):
            admin.append(path, f'{{"thread": {thread:02d}, "i": {i:02d}}}\n'.encode())

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(worker, range(20)))
    lines = admin.read(path).decode().splitlines()
    assert len(lines) == 20 * per_thread
    assert sorted(lines) == sorted(f'{{"thread": {t:02d}, "i": {i:02d}}}'
                                   for t in range(20) for i in range(per_thread))
    # Each thread's own lines stay in the order it appended them.
    for t in range(20):
        mine = [line for line in lines if f'"thread": {t:02d}' in line]
        assert mine == sorted(mine)
    assert admin.stat(path)["version"] == 20 * per_thread


def test_concurrent_creates_of_one_path_all_succeed(admin: NexusClient) -> None:
    def worker(i: int) -> dict:
        return admin.write("/tenants/acme/race/same.txt", f"writer {i}".encode())

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(worker, range(32)))
    versions = sorted(r["version"] for r in results)
    assert versions == list(range(1, 33))
    final = admin.read("/tenants/acme/race/same.txt").decode()
    assert final.startswith("writer ")


def test_concurrent_mkdir_and_writes_in_new_trees(admin: NexusClient) -> None:
    def worker(i: int) -> None:
        admin.mkdir("/tenants/acme/deep/a/b/c")
        admin.write(f"/tenants/acme/deep/a/b/c/f{i}", b"x")
        admin.write(f"/tenants/t{i % 4}/shared/f{i}", b"y")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(worker, range(64)))
    assert len(admin.list("/tenants/acme/deep/a/b/c")) == 64
    assert [e["name"] for e in admin.list("/tenants")] == ["acme", "t0", "t1", "t2", "t3"]
    assert sum(len(admin.list(f"/tenants/t{k}/shared")) for k in range(4)) == 64
