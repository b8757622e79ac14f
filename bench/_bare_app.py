"""The floor of ``bench/scale_out.py``: the least an ASGI app on uvicorn can answer a GET
with (no framework, no database), run with the same worker counts as Nexus."""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
