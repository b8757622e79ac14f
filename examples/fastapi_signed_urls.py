"""A SaaS backend that lets browsers upload and download straight from Nexus.

The app holds one Nexus API key per tenant (here: one, from the environment) and never
proxies a byte: it checks its own user, then hands the browser a signed URL that is good
for one file, one method and a few minutes. Run it beside ``nexus serve``::

    NEXUS_URL=http://localhost:8080 NEXUS_API_KEY=<a key of acme's alice> \\
        uvicorn examples.fastapi_signed_urls:app --port 9000

then, from the browser's side (here curl)::

    curl -s -X POST localhost:9000/uploads -H 'content-type: application/json' \\
         -d '{"name": "avatar.png", "size": 12345, "content_type": "image/png"}'
    # -> {"upload_url": "http://localhost:8080/api/signed/…", "method": "PUT", …}
    curl -s -X PUT --data-binary @avatar.png -H 'content-type: image/png' "<upload_url>"
    curl -sL localhost:9000/files/avatar.png -o back.png      # a 307 to a signed GET

``nexus serve --cors-origins https://app.example.com`` lets pages of that origin use the
URLs with ``fetch``; a plain link or ``<img src>`` needs no CORS.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

import nexus

TENANT = os.environ.get("NEXUS_TENANT", "acme")
#: What the app lets its users upload: the checks an app makes before it signs.
MAX_UPLOAD = 10 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    config = {"url": os.environ["NEXUS_URL"], "api_key": os.environ["NEXUS_API_KEY"]}
    async with nexus.connect_async(config=config) as client:
        app.state.nexus = client
        yield


app = FastAPI(title="Signed URL example", lifespan=lifespan)


class UploadRequest(BaseModel):
    name: str
    size: int = Field(gt=0, le=MAX_UPLOAD)
    content_type: str = "application/octet-stream"


def _path(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise HTTPException(400, "file names are letters, digits, '.', '_' and '-'")
    return f"/tenants/{TENANT}/uploads/{name}"


@app.post("/uploads")
async def start_upload(request: UploadRequest) -> dict[str, object]:
    """A URL the browser PUTs the file to: this name, at most this size, this type."""
    client: nexus.AsyncNexusClient = app.state.nexus
    url = await client.sign_url(_path(request.name), "PUT", expires_in=300,
                                max_size=request.size, content_type=request.content_type)
    return {"upload_url": url, "method": "PUT",
            "headers": {"Content-Type": request.content_type}}


@app.get("/files/{name}")
async def download(name: str) -> RedirectResponse:
    """Send the browser to the file itself, for a minute."""
    client: nexus.AsyncNexusClient = app.state.nexus
    try:
        url = await client.sign_url(_path(name), expires_in=60)
    except nexus.NexusFileNotFoundError:
        raise HTTPException(404, f"no file {name}") from None
    return RedirectResponse(url, status_code=307)


@app.get("/files")
async def files() -> list[dict[str, object]]:
    """The tenant's uploads (the app's own view, over the async client)."""
    client: nexus.AsyncNexusClient = app.state.nexus
    entries = await client.list(f"/tenants/{TENANT}/uploads")
    return [{"name": e["name"], "size": e["size"]} for e in entries if e["type"] == "file"]
