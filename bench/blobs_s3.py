"""1 GiB upload and download through a Nexus server whose blobs are on S3 (moto's server),
with the server's peak RSS growth, against the floor: boto3 alone moving the same bytes
to and from the same S3 server in the same run.

Run from the repository root::

    .venv/bin/python bench/blobs_s3.py            # 1 GiB
    .venv/bin/python bench/blobs_s3.py --quick    # 128 MiB
    .venv/bin/python bench/blobs_s3.py --size-mib 256

The script starts ``moto_server`` on a free loopback port and ``nexus serve --blob-url
s3://<bucket>/nexus`` (SQLite in a temporary data directory) with the AWS variables
pointing at moto, and stops both at the end. Rows:

``floor_upload``    boto3 ``upload_fileobj`` (8 MiB parts) of the bytes, generated in 1 MiB
                    chunks, straight to the bucket
``floor_download``  boto3 ``get_object`` of that object, read in 1 MiB chunks
``nexus_upload``    ``client.write(path, generator of 1 MiB chunks)`` over HTTP: Nexus
                    hashes while it streams 8 MiB parts to a staging key, then copies it
                    inside S3 to its content-addressed key (moto copies in its memory)
``nexus_download``  ``client.read_stream(path)`` over HTTP (a ranged-capable GET streamed
                    in 1 MiB chunks)
``server_rss``      the peak RSS growth of the ``nexus serve`` process during each phase:
                    what bounded memory claims (about one part per upload, not the file)

moto keeps objects in its own memory, so its throughput is the floor's ceiling here, not
AWS's; the ratio to the floor is the figure that carries over.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _common import MB, RssSampler, date_line, machine_line, python_version, script_parser

# The moto helper is the test suite's (one way to start it); bench/ is first on sys.path,
# the repository root is not.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from tests._s3 import MotoServer  # noqa: E402

import nexus  # noqa: E402
from nexus._serve import ServeProcess  # noqa: E402

CHUNK = 1024 * 1024


def chunks(total: int) -> Iterator[bytes]:
    """``total`` bytes in 1 MiB chunks that differ (so nothing dedups or compresses)."""
    block = os.urandom(CHUNK)
    for n in range(total // CHUNK):
        yield n.to_bytes(8, "big") + block[8:]


class _Reader:
    """A file-like over :func:`chunks`, for boto3's upload_fileobj."""

    def __init__(self, total: int) -> None:
        self._chunks = chunks(total)
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            piece = next(self._chunks, None)
            if piece is None:
                break
            self._pending += piece
        if size < 0:
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out


def _rate(size: int, seconds: float) -> str:
    return f"{size / MB / seconds:8.1f} MB/s  ({seconds:6.2f} s)"


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="128 MiB instead of 1 GiB")
    parser.add_argument("--size-mib", type=int, default=None)
    args = parser.parse_args()
    size = (args.size_mib or (128 if args.quick else 1024)) * CHUNK
    print(f"# bench/blobs_s3.py — {size // CHUNK} MiB through S3 (moto)")
    print(f"# {date_line()}\n# {machine_line()}\n# Python {python_version()}")
    with MotoServer() as moto, tempfile.TemporaryDirectory(prefix="nexus-bench-s3-") as tmp:
        os.environ.update(moto.env)
        client = moto.client()
        floor_bucket = moto.new_bucket()

        began = time.perf_counter()
        client.upload_fileobj(_Reader(size), floor_bucket, "floor.bin")
        floor_up = time.perf_counter() - began
        began = time.perf_counter()
        body = client.get_object(Bucket=floor_bucket, Key="floor.bin")["Body"]
        got = 0
        while piece := body.read(CHUNK):
            got += len(piece)
        floor_down = time.perf_counter() - began
        assert got == size
        client.delete_object(Bucket=floor_bucket, Key="floor.bin")

        url = f"s3://{moto.new_bucket()}/nexus"
        server = ServeProcess(Path(tmp) / "data", None, log_path=Path(tmp) / "serve.log",
                              extra_args=("--blob-url", url, "--log-level", "warning"),
                              env=moto.env, startup_seconds=90, stop_seconds=120)
        with server:
            assert server.proc is not None
            key = (Path(tmp) / "data" / "admin.key").read_text().strip()
            with nexus.connect(config={"url": server.url, "api_key": key,
                                       "timeout": 600}) as nx:
                hasher = hashlib.sha256()

                def hashed() -> Iterator[bytes]:
                    for piece in chunks(size):
                        hasher.update(piece)
                        yield piece

                with RssSampler(server.proc.pid) as up_rss:
                    began = time.perf_counter()
                    info = nx.write("/tenants/bench/big.bin", hashed())
                    nexus_up = time.perf_counter() - began
                assert info["etag"] == hasher.hexdigest()
                with RssSampler(server.proc.pid) as down_rss:
                    began = time.perf_counter()
                    check = hashlib.sha256()
                    for piece in nx.read_stream("/tenants/bench/big.bin"):
                        check.update(piece)
                    nexus_down = time.perf_counter() - began
                assert check.hexdigest() == info["etag"]
        keys = moto.keys(url.removeprefix("s3://").split("/")[0])
        local = [p for p in (Path(tmp) / "data").rglob("*")
                 if p.is_file() and "blobs" in p.parts]
    print(f"floor_upload    {_rate(size, floor_up)}")
    print(f"floor_download  {_rate(size, floor_down)}")
    print(f"nexus_upload    {_rate(size, nexus_up)}  = {floor_up / nexus_up:4.2f}x the floor")
    print(f"nexus_download  {_rate(size, nexus_down)}  = {floor_down / nexus_down:4.2f}x "
          "the floor")
    print(f"server_rss      upload +{up_rss.server_growth_mb:.0f} MB, download "
          f"+{down_rss.server_growth_mb:.0f} MB peak growth (file: {size / MB:.0f} MB)")
    print(f"client_rss      upload +{up_rss.client_growth_mb:.0f} MB, download "
          f"+{down_rss.client_growth_mb:.0f} MB (this process: boto3 floor + client)")
    print(f"# objects in the bucket: {len(keys)} (blob + deployment marker); "
          f"blob files on local disk: {len(local)}")


if __name__ == "__main__":
    main()
