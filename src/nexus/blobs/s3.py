"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS, Garage, moto).

``s3://BUCKET/PREFIX`` keeps a blob at ``PREFIX/<tenant>/<dd>/<digest>``, the deployment
marker at ``PREFIX/.nexus-deployment`` and uploads in progress under ``PREFIX/.staging/``.

Configuration is boto3's own and nothing else: credentials, region and endpoint come from
the standard AWS sources (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE`` and ``~/.aws/config``, ``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3`` for a non-AWS server, instance and
container roles), so whatever works for the ``aws`` CLI works here.

**Buckets are never created.** A bucket that does not exist is refused when the store is
first used (at startup: reading the deployment marker) with an error naming it. Creating
a bucket is a decision about its region, encryption, versioning, lifecycle rules and
access policy that belongs to whoever runs the deployment; a typo in ``--blob-url`` must
not quietly make a new, empty, unprotected bucket.

Writes. Content is hashed while it streams, so its key is known only at the end. A blob
smaller than one part (8 MiB) is held in memory and written with one ``PutObject``; a
larger one streams as a multipart upload of 8 MiB parts to a staging key (memory per
upload: one part), which the commit copies inside S3 to its key and then deletes. The
commit is conditional (``If-None-Match: *``), so exactly one of several writers of the
same content creates the key and gets a stamp. A writer that finds the key there
**re-stores** it (the same bytes, unconditionally: a ``PutObject`` of the part in memory
or a server-side copy of the staged object — never a second upload from the client),
which moves its ``LastModified`` and its ``nexus-stored`` metadata (nanoseconds, the
writer's clock) to now.

Garbage collection. ``inventory`` is one ``ListObjectsV2`` walk (sizes and
``LastModified``, no HEAD per blob). ``collect`` HEADs one candidate and deletes it only
if its ``nexus-stored`` time is before the cutoff. What S3 cannot do is make that check
and the delete one step: a conditional ``DeleteObject`` compares ETags, and a re-store of
the same bytes has the same ETag. So one window remains — a writer re-storing content
that is unreferenced *and* older than the grace period (an hour by default) in the round
trip between gc's HEAD and its DELETE. The clocks of the servers must agree to well
within the grace period (NTP).

Withdrawal. For the same reason a refused write's blob is not withdrawn at once
(:meth:`S3BlobStore._withdraw` removes nothing): concurrent uploads of one file are
common, and a DELETE racing another writer's re-store would remove the content that
writer has just been told is stored. Such blobs are unreferenced and gc collects them
after the grace period.

Errors from botocore are translated where they enter: a missing key is
:class:`~nexus.blobs.BlobNotFound`; a missing bucket, refused credentials, a server that
cannot be reached, 5xx answers and throttling are :class:`~nexus.errors.UnavailableError`
saying which; anything else is :class:`~nexus.errors.InternalError`.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from nexus.blobs.base import (
    CHUNK_SIZE,
    DEPLOYMENT_MARKER,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    StagedBlob,
)
from nexus.errors import InternalError, InvalidArgumentError, UnavailableError

#: boto3's S3 client (its type stubs are a separate package we do not require).
S3Client = Any

__all__ = ["PART_SIZE", "S3BlobStore"]

#: Multipart part size: what one upload holds in memory (S3's minimum is 5 MiB).
PART_SIZE = 8 * 1024 * 1024
#: Largest object one CopyObject may copy; larger ones are copied part by part.
_COPY_LIMIT = 5 * 1024 ** 3
_COPY_PART = 1024 ** 3
#: DeleteObjects takes at most this many keys per call.
_DELETE_BATCH = 1000
_STAGING = ".staging"
_STORED = "nexus-stored"    # metadata: when this object was last stored, in ns
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                     "ExpiredToken", "InvalidToken", "AccountProblem", "AllAccessDisabled"})
_BUSY = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                   "ServiceUnavailable", "InternalError", "RequestTimeTooSkewed"})


class _Staged(StagedBlob):
    """Content waiting for its key: bytes in memory (small) or a staging object."""

    def __init__(self, store: S3BlobStore, *, data: bytes | None = None,
                 staged_key: str | None = None, size: int = 0) -> None:
        self._store = store
        self._data = data
        self._staged_key = staged_key
        self._size = size

    def commit(self, key: str) -> int | None:
        store, full = self._store, self._store._full(key)
        stamp = secrets.randbits(62)
        try:
            if store._write(full, self._data, self._staged_key, self._size, stamp,
                            only_if_absent=True):
                return stamp
            # There already: re-store it (see the module docstring), so gc sees it young.
            store._write(full, self._data, self._staged_key, self._size, stamp,
                         only_if_absent=False)
            return None
        finally:
            self.discard()

    def discard(self) -> None:
        self._data = None
        if self._staged_key is not None:
            key, self._staged_key = self._staged_key, None
            with contextlib.suppress(UnavailableError, InternalError):
                # Left behind on failure: purge_staging removes it later.
                self._store._call("delete a staged upload", "delete_object", key,
                                  Key=key)


class S3BlobStore(BlobStore):
    """Blobs under ``prefix`` in ``bucket``, through one boto3 client (thread-safe)."""

    def __init__(self, bucket: str, prefix: str = "", *, client: S3Client | None = None,
                 part_size: int = PART_SIZE) -> None:
        if not bucket or "/" in bucket:
            raise InvalidArgumentError(f"not an S3 bucket name: {bucket!r}")
        if part_size < 5 * 1024 * 1024:
            raise InvalidArgumentError("S3 multipart parts must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        self._client_lock = threading.Lock()
        self._client_given = client

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        """``s3://BUCKET`` or ``s3://BUCKET/PREFIX``."""
        rest = url.split("://", 1)[1]
        bucket, _, prefix = rest.partition("/")
        return cls(bucket, prefix)

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}')"

    @property
    def _client(self) -> S3Client:
        # Built on first use (not in the constructor), so that naming a store costs no
        # credential lookup; one client per store, shared by all threads.
        if self._client_given is None:
            with self._client_lock:
                if self._client_given is None:
                    config = Config(retries={"mode": "standard", "max_attempts": 5},
                                    max_pool_connections=64, connect_timeout=10,
                                    read_timeout=60)
                    self._client_given = boto3.session.Session().client("s3", config=config)
        return self._client_given

    @property
    def endpoint(self) -> str:
        return str(self._client.meta.endpoint_url)

    def same_store(self, other: BlobStore) -> bool:
        """Whether ``other`` is this bucket on this endpoint (a copy can stay inside S3)."""
        return isinstance(other, S3BlobStore) and other.bucket == self.bucket \
            and other.endpoint == self.endpoint

    # -- errors --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str, key: str | None) -> Iterator[None]:
        where = f"s3://{self.bucket}/{key or self.prefix}"
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _MISSING:
                raise BlobNotFound(key or "") from exc
            if code == "NoSuchBucket":
                raise UnavailableError(
                    f"S3 bucket {self.bucket!r} does not exist at {self.endpoint}; Nexus "
                    "does not create buckets — create it (e.g. `aws s3 mb "
                    f"s3://{self.bucket}`) and let these credentials use it",
                    reason="no_such_bucket") from exc
            if code in _DENIED or status == 403:
                raise UnavailableError(
                    f"S3 refused to {action} {where}: {code} — check the AWS credentials "
                    "(AWS_ACCESS_KEY_ID, AWS_PROFILE, …) and the bucket's policy",
                    reason="access_denied") from exc
            if status >= 500 or code in _BUSY:
                raise UnavailableError(f"S3 is unavailable: {action} {where} answered "
                                       f"{status} {code}", reason="s3_unavailable") from exc
            raise InternalError(f"S3 refused to {action} {where}: {status} {code} "
                                f"{error.get('Message', '')}".rstrip()) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise UnavailableError(
                f"no AWS credentials to {action} {where}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance role",
                reason="no_credentials") from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise UnavailableError(f"cannot reach S3 at {self.endpoint} to {action} "
                                   f"{where}: {exc}", reason="s3_unreachable") from exc
        except BotoCoreError as exc:
            raise UnavailableError(f"S3 client failed to {action} {where}: {exc}",
                                   reason="s3_client") from exc

    def _call(self, action: str, method: str, key: str | None, **params: Any) -> Any:
        with self._errors(action, key):
            return getattr(self._client, method)(Bucket=self.bucket, **params)

    def _conditional(self, action: str, method: str, key: str, **params: Any) -> Any:
        """Like :meth:`_call`, but ``None`` when the precondition failed (412)."""
        while True:
            try:
                with self._errors(action, key):
                    try:
                        return getattr(self._client, method)(Bucket=self.bucket, **params)
                    except ClientError as exc:
                        code = str(exc.response.get("Error", {}).get("Code", ""))
                        if code == "PreconditionFailed":
                            return None
                        if code == "ConditionalRequestConflict":
                            raise _Retry from exc  # a concurrent conditional write: again
                        raise
            except _Retry:
                continue

    # -- keys ----------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    # -- writes --------------------------------------------------------------------------

    def _stage(self, chunks: Iterator[bytes]) -> StagedBlob:
        buffer = bytearray()
        upload: _Multipart | None = None
        try:
            # The source's own errors (a broken client stream, a quota guard) propagate
            # untranslated; only the S3 calls go through _errors.
            for chunk in chunks:
                buffer += chunk
                while len(buffer) >= self.part_size:
                    if upload is None:
                        upload = _Multipart(self, self._full(f"{_STAGING}/{uuid.uuid4().hex}"))
                    upload.send(bytes(buffer[:self.part_size]))
                    del buffer[:self.part_size]
            if upload is None:
                return _Staged(self, data=bytes(buffer), size=len(buffer))
            if buffer:
                upload.send(bytes(buffer))
            upload.complete()
            return _Staged(self, staged_key=upload.key, size=upload.size)
        except BaseException:
            if upload is not None:
                upload.abort()
            raise

    def _write(self, full: str, data: bytes | None, staged: str | None, size: int,
               stamp: int, *, only_if_absent: bool) -> bool:
        """Place content at ``full`` from memory or the staged object; False if
        ``only_if_absent`` and the key existed."""
        metadata = {_STORED: str(time.time_ns()), "nexus-stamp": str(stamp)}
        condition = {"IfNoneMatch": "*"} if only_if_absent else {}
        if data is not None:
            result = self._conditional("store", "put_object", full, Key=full, Body=data,
                                       Metadata=metadata, **condition)
        else:
            assert staged is not None
            result = self._copy(staged, full, size, metadata, condition)
        return result is not None

    def _copy(self, source: str, target: str, size: int, metadata: dict[str, str],
              condition: dict[str, str]) -> Any:
        """Server-side copy; None if the condition failed. A conditional copy is a
        multipart copy, because ``If-None-Match`` on CompleteMultipartUpload is what S3
        (and moto) enforce — CopyObject's is not everywhere; an unconditional one is a
        CopyObject up to 5 GiB."""
        copy_source = {"Bucket": self.bucket, "Key": source}
        if not condition and size <= _COPY_LIMIT:
            return self._call("copy", "copy_object", target, Key=target,
                              CopySource=copy_source, Metadata=metadata,
                              MetadataDirective="REPLACE")
        upload = self._call("copy", "create_multipart_upload", target, Key=target,
                            Metadata=metadata)["UploadId"]
        result = None
        try:
            parts = []
            ranges = [(0, size)] if size <= _COPY_LIMIT else \
                [(start, min(start + _COPY_PART, size)) for start in range(0, size, _COPY_PART)]
            for number, (start, end) in enumerate(ranges, start=1):
                whole = {} if len(ranges) == 1 else {"CopySourceRange": f"bytes={start}-{end - 1}"}
                part = self._call("copy", "upload_part_copy", target, Key=target,
                                  UploadId=upload, PartNumber=number,
                                  CopySource=copy_source, **whole)
                parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
            result = self._conditional("copy", "complete_multipart_upload", target,
                                       Key=target, UploadId=upload,
                                       MultipartUpload={"Parts": parts}, **condition)
        finally:
            if result is None:  # failed, or the key existed: the upload is not needed
                with contextlib.suppress(UnavailableError, InternalError, BlobNotFound):
                    self._call("abort a copy", "abort_multipart_upload", target,
                               Key=target, UploadId=upload)
        return result

    def copy_from(self, source: BlobStore, src_tenant: str, dst_tenant: str,
                  digest: str) -> BlobInfo:
        """Inside this bucket the bytes never leave S3 (CopyObject). The source key is
        content-addressed — its bytes were hashed by :meth:`put` when stored — so the
        digest of the copy is the source's."""
        if not self.same_store(source):
            return super().copy_from(source, src_tenant, dst_tenant, digest)
        src = self._full(self.key(src_tenant, digest))
        dst = self._full(self.key(dst_tenant, digest))
        size = int(self._call("look up", "head_object", src, Key=src)["ContentLength"])
        stamp = secrets.randbits(62)
        metadata = {_STORED: str(time.time_ns()), "nexus-stamp": str(stamp)}
        if self._copy(src, dst, size, metadata, {"IfNoneMatch": "*"}) is not None:
            return BlobInfo(digest, size, stamp)
        metadata[_STORED] = str(time.time_ns())
        self._copy(src, dst, size, metadata, {})  # re-store: gc sees it young
        return BlobInfo(digest, size, None)

    # -- reads ---------------------------------------------------------------------------

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        full = self._full(key)
        if end is not None and end <= start:
            self._stat(key)  # nothing to read, but a missing blob is still an error
            return iter([])
        params: dict[str, Any] = {"Key": full}
        if start > 0 or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            with self._errors("read", full):
                try:
                    response = self._client.get_object(Bucket=self.bucket, **params)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                        return iter([])  # the range starts past the end: no bytes
                    raise
        except BlobNotFound:
            raise BlobNotFound(key) from None
        return self._body(response["Body"], full)

    def _body(self, body: Any, full: str) -> Iterator[bytes]:
        # Full CHUNK_SIZE chunks (a socket read may return less), the last one shorter.
        try:
            pending = bytearray()
            while True:
                with self._errors("read", full):
                    piece = body.read(CHUNK_SIZE - len(pending))
                if not piece:
                    break
                pending += piece
                if len(pending) == CHUNK_SIZE:
                    yield bytes(pending)
                    pending.clear()
            if pending:
                yield bytes(pending)
        finally:
            body.close()

    def _stat(self, key: str) -> tuple[int, float]:
        full = self._full(key)
        try:
            head = self._call("look up", "head_object", full, Key=full)
        except BlobNotFound:
            raise BlobNotFound(key) from None
        return int(head["ContentLength"]), _stored_time(head)

    # -- removal -------------------------------------------------------------------------

    def _delete(self, key: str) -> None:
        full = self._full(key)
        self._call("delete", "delete_object", full, Key=full)

    def _delete_many(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": self._full(k)} for k in keys[start:start + _DELETE_BATCH]]
            result = self._call("delete", "delete_objects", None,
                                Delete={"Objects": batch, "Quiet": True})
            failed = [e for e in result.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                first = failed[0]
                raise UnavailableError(f"S3 did not delete {len(failed)} of {len(batch)} "
                                       f"objects (first: {first.get('Key')}: "
                                       f"{first.get('Code')})", reason="s3_delete")

    def _collect(self, key: str, before: float) -> bool:
        full = self._full(key)
        try:
            head = self._call("look up", "head_object", full, Key=full)
        except BlobNotFound:
            return False
        if _stored_time(head) >= before:
            return False
        # The window of the module docstring: a re-store landing now is lost.
        self._call("delete", "delete_object", full, Key=full)
        return True

    def _purge_staging(self, before: float, dry_run: bool) -> int:
        staging = self._full(_STAGING) + "/"
        removed = 0
        with self._errors("list uploads in", staging):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=staging)
            uploads = [u for page in pages for u in page.get("Uploads", [])]
        for upload in uploads:
            if upload["Initiated"].timestamp() >= before:
                continue
            if not dry_run:
                with contextlib.suppress(BlobNotFound):  # finished meanwhile
                    self._call("abort an upload", "abort_multipart_upload", upload["Key"],
                               Key=upload["Key"], UploadId=upload["UploadId"])
            removed += 1
        stale = [key for key, _, modified in self._list_full(staging) if modified < before]
        if not dry_run:
            self._delete_many([key[len(self._root()):] for key in stale])
        return removed + len(stale)

    # -- listing -------------------------------------------------------------------------

    def _list_full(self, full_prefix: str) -> Iterator[tuple[str, int, float]]:
        with self._errors("list", full_prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full_prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"], int(item["Size"]), item["LastModified"].timestamp()

    def _list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        root = len(self._root())
        for key, size, modified in self._list_full(self._full(prefix)):
            yield key[root:], size, modified

    def _iter_namespaces(self) -> Iterator[str]:
        root = self._root()
        with self._errors("list", root):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root, Delimiter="/")
            names = [p["Prefix"][len(root):].rstrip("/")
                     for page in pages for p in page.get("CommonPrefixes", [])]
        return iter([n for n in names if n and n != _STAGING])

    # -- the deployment marker -------------------------------------------------------------

    def _read_marker(self) -> bytes | None:
        full = self._full(DEPLOYMENT_MARKER)
        try:
            response = self._call("read", "get_object", full, Key=full)
        except BlobNotFound:
            return None
        with self._errors("read", full):
            return bytes(response["Body"].read())

    def _write_marker(self, data: bytes) -> None:
        full = self._full(DEPLOYMENT_MARKER)
        self._call("write", "put_object", full, Key=full, Body=data)


class _Multipart:
    """One multipart upload to a staging key, fed one part at a time."""

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self.store, self.key, self.size = store, key, 0
        self.parts: list[dict[str, Any]] = []
        self.upload_id = store._call("start an upload", "create_multipart_upload", key,
                                     Key=key)["UploadId"]

    def send(self, data: bytes) -> None:
        number = len(self.parts) + 1
        part = self.store._call("upload", "upload_part", self.key, Key=self.key,
                                UploadId=self.upload_id, PartNumber=number, Body=data)
        self.parts.append({"PartNumber": number, "ETag": part["ETag"]})
        self.size += len(data)

    def complete(self) -> None:
        self.store._call("finish an upload", "complete_multipart_upload", self.key,
                         Key=self.key, UploadId=self.upload_id,
                         MultipartUpload={"Parts": self.parts})
        self.upload_id = ""

    def abort(self) -> None:
        with contextlib.suppress(UnavailableError, InternalError, BlobNotFound):
            if self.upload_id:
                self.store._call("abort an upload", "abort_multipart_upload", self.key,
                                 Key=self.key, UploadId=self.upload_id)
            else:  # completed, then the commit never came
                self.store._call("delete a staged upload", "delete_object", self.key,
                                 Key=self.key)


class _Retry(Exception):
    """A conditional write met a concurrent one (409): try it again."""


def _stored_time(head: dict[str, Any]) -> float:
    """When the object was last stored: our metadata (ns, the writer's clock), else the
    server's LastModified rounded up a second (it has one-second resolution), so an
    object written by another tool is never judged older than it is."""
    raw = head.get("Metadata", {}).get(_STORED)
    if raw and raw.isdigit():
        return int(raw) / 1_000_000_000
    return float(head["LastModified"].timestamp()) + 1.0
