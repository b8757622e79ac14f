"""moto's standalone S3 server on loopback, for the tests (and ``bench/blobs_s3.py``).

A real HTTP server in a child process — boto3 itself is never mocked, so requests,
signing, multipart uploads, ranges and error answers go over a socket as they would to
AWS or MinIO. Each pytest-xdist worker starts its own server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import httpx

from nexus._serve import free_port

__all__ = ["MotoServer", "S3Target"]

#: Testing values only: moto accepts any credentials.
_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def _moto_binary() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    return str(beside) if beside.exists() else (shutil.which("moto_server") or "moto_server")


class MotoServer:
    """``moto_server -H 127.0.0.1 -p <free port>``, answering when :meth:`start` returns."""

    def __init__(self, *, startup_seconds: float = 30.0) -> None:
        self.port = 0
        self.endpoint = ""
        self.startup_seconds = startup_seconds
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a process needs in its environment to reach this server through boto3's
        standard configuration (no profile or config file of the machine interferes)."""
        return {**_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def start(self) -> MotoServer:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([_moto_binary(), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_seconds
        while True:  # poll with a deadline: waiting for a process, not for a time
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.endpoint + "/moto-api/", timeout=1).status_code < 500:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not answer in {self.startup_seconds} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> Any:
        """A boto3 S3 client for this server (for setting up and inspecting buckets)."""
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing")

    def new_bucket(self) -> str:
        name = f"nexus-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` under ``prefix``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                         Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class S3Target:
    """What the ``s3_blob_url`` fixture gives: each read of :attr:`url` is a fresh
    ``s3://<new bucket>/nexus`` (a deployment marks its store, so no two deployments may
    share one), and :attr:`env` reaches the server (also set in ``os.environ``)."""

    def __init__(self, server: MotoServer) -> None:
        self.server = server

    @property
    def url(self) -> str:
        return f"s3://{self.server.new_bucket()}/nexus"

    @property
    def env(self) -> Mapping[str, str]:
        return self.server.env
