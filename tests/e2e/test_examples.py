"""examples/fastapi_signed_urls.py works as its docstring says, against a real server:
the app signs, the "browser" (plain httpx, no key) uploads and downloads."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.serving import NexusProcess, tenant_key

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_signed_urls.py"


def _load_example():  # noqa: ANN202 - the module
    spec = importlib.util.spec_from_file_location("fastapi_signed_urls", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_fastapi_example_hands_browsers_signed_urls(
        tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    server = NexusProcess(tmp_path / "data", database_url, log=tmp_path / "serve.log")
    try:
        admin = server.client()
        admin.create_tenant("acme")
        monkeypatch.setenv("NEXUS_URL", server.url)
        monkeypatch.setenv("NEXUS_API_KEY", tenant_key(admin, "acme", "alice", owner=True))
        example = _load_example()
        with TestClient(example.app) as app, httpx.Client() as browser:
            started = app.post("/uploads", json={"name": "avatar.png", "size": 9,
                                                 "content_type": "image/png"}).json()
            assert started["upload_url"].startswith(f"{server.url}/api/signed/")
            put = browser.put(started["upload_url"], content=b"PNG bytes",
                              headers=started["headers"])
            assert put.status_code == 200, put.text
            too_big = browser.put(started["upload_url"], content=b"PNG bytes!",
                                  headers=started["headers"])
            assert too_big.status_code == 413
            assert app.get("/files").json() == [{"name": "avatar.png", "size": 9}]
            redirect = app.get("/files/avatar.png", follow_redirects=False)
            assert redirect.status_code == 307
            assert browser.get(redirect.headers["location"]).content == b"PNG bytes"
            assert app.get("/files/missing.png").status_code == 404
            assert app.post("/uploads", json={"name": "../x", "size": 1}).status_code == 400
        assert admin.read("/tenants/acme/uploads/avatar.png") == b"PNG bytes"
    finally:
        server.stop()
        sys.modules.pop("fastapi_signed_urls", None)
