"""A real browser uses signed URLs from a page on another origin.

Headless Chromium (Debian's ``chromium``, driven by Playwright) loads a page served from
one loopback port; ``nexus serve`` runs on another with ``--cors-origins`` naming the
page's origin. The page downloads (whole and a ``Range``) and uploads through signed URLs
with ``fetch`` and no key; a page from an origin that is not listed cannot read the
answer. Skipped where no browser is installed, except in CI (``CI=true``), which fails.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.serving import NexusProcess, free_port, tenant_key

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>signed URLs</title>
<pre id="out"></pre>
<script src="page.js"></script>
"""

# The page's script: every fetch is cross-origin, with no credentials.
SCRIPT = """
const urls = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const out = {};
async function attempt(name, run) {
  try { out[name] = await run(); } catch (error) { out[name] = "blocked: " + error.name; }
}
(async () => {
  await attempt("get", async () => (await fetch(urls.get)).text());
  await attempt("range", async () => {
    const response = await fetch(urls.get, {headers: {Range: "bytes=7-"}});
    return response.status + " " + await response.text() + " " + response.headers.get("ETag");
  });
  if (urls.put) {
    await attempt("put", async () => {
      const response = await fetch(urls.put, {method: "PUT", body: "from the browser",
                                               headers: {"Content-Type": "text/plain"}});
      return response.status;
    });
    await attempt("too_big", async () => {
      const response = await fetch(urls.put, {method: "PUT", body: "x".repeat(100),
                                               headers: {"Content-Type": "text/plain"}});
      return response.status;
    });
  }
  document.getElementById("out").textContent = JSON.stringify(out);
  document.title = "done";
})();
"""


def _browser_available() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    problem = _browser_available()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"a browser is required in CI: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--headless=new"])
        yield browser
        browser.close()


class _PageServer:
    """The app's pages: a static directory on its own loopback port (its own origin)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "index.html").write_text(PAGE)
        (directory / "page.js").write_text(SCRIPT)
        handler = partial(_QuietHandler, directory=str(directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.origin = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _run_page(chromium: object, origin: str, urls: dict[str, str]) -> dict[str, object]:
    page = chromium.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(f"{origin}/index.html#{json.dumps(urls)}")
        page.wait_for_function("document.title === 'done'", timeout=30_000)
        return json.loads(page.text_content("#out") or "{}")
    finally:
        page.close()


def test_a_page_on_another_origin_downloads_and_uploads_with_signed_urls(
        chromium: object, tmp_path: Path, database_url: str | None) -> None:
    app_pages = _PageServer(tmp_path / "app")
    other_pages = _PageServer(tmp_path / "other")
    server = NexusProcess(tmp_path / "data", database_url, log=tmp_path / "serve.log",
                          extra_args=["--cors-origins", app_pages.origin])
    try:
        admin = server.client()
        admin.create_tenant("acme")
        alice = server.client(tenant_key(admin, "acme", "alice", owner=True))
        alice.write("/tenants/acme/hello.txt", b"hello, browser")
        etag = alice.stat("/tenants/acme/hello.txt")["etag"]
        urls = {"get": alice.sign_url("/tenants/acme/hello.txt", expires_in=300),
                "put": alice.sign_url("/tenants/acme/uploads/from-page.txt", "PUT",
                                      expires_in=300, max_size=50, content_type="text/plain")}

        seen = _run_page(chromium, app_pages.origin, urls)
        assert seen["get"] == "hello, browser"
        assert seen["range"] == f'206 browser "{etag}"'  # the ETag header is exposed
        assert seen["put"] == 200
        assert seen["too_big"] == 413
        assert alice.read("/tenants/acme/uploads/from-page.txt") == b"from the browser"

        # A page the deployment did not list gets no CORS answer: it cannot read.
        blocked = _run_page(chromium, other_pages.origin, {"get": urls["get"]})
        assert str(blocked["get"]).startswith("blocked")
        events = admin.audit_query("acme", limit=1000)["events"]
        assert any(e["action"] == "write" and "via signed URL" in (e["detail"] or "")
                   and e["target"] == "/tenants/acme/uploads/from-page.txt" for e in events)
    finally:
        server.stop()
        app_pages.close()
        other_pages.close()
