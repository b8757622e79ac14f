"""Fixtures of the multi-replica harness (tests/replicas/harness.py).

Every test here runs once per shared blob store kind: ``file`` (a directory all replicas
reach, via ``NEXUS_BLOB_URL=file:///…``) and ``s3`` (a bucket on moto's standalone
server). The ``s3`` half takes its bucket from the session's moto fixture
(:data:`S3_FIXTURE`) and skips, saying so, while there is none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_ADMIN_URL
from tests.run_summary import Line, provider

from .harness import BlobTarget, Deployment, fresh_database, local_blobs, running_deployment

#: The session fixture that serves an S3 bucket on moto's server. It may give the
#: ``s3://bucket/prefix`` URL as a string (the AWS endpoint and credentials then being in
#: ``os.environ``, which every replica inherits) or an object with ``url`` and ``env``.
S3_FIXTURE = "s3_blob_url"
BLOB_KINDS = ("file", "s3")

#: Adds a line to the ``replica propagation`` section of the terminal summary.
Report = Callable[[str], None]
_PROPAGATION = pytest.StashKey[list[str]]()


@pytest.fixture
def propagation_report(request: pytest.FixtureRequest) -> Report:
    """The measured delay distributions are printed at the end of the run, pass or fail."""
    return request.config.stash.setdefault(_PROPAGATION, []).append


@provider
def _summary(config: pytest.Config) -> list[Line]:
    return [Line("replica propagation", text) for text in config.stash.get(_PROPAGATION, [])]


def _s3_target(request: pytest.FixtureRequest) -> BlobTarget:
    try:
        given: Any = request.getfixturevalue(S3_FIXTURE)
    except pytest.FixtureLookupError:
        pytest.skip(f"no {S3_FIXTURE!r} fixture (moto's S3 server) in tests/conftest.py "
                    "yet: the replicas run on a shared directory only")
    if isinstance(given, str):
        return BlobTarget("s3", given)
    return BlobTarget("s3", str(given.url), dict(getattr(given, "env", {}) or {}))


def _blob_target(kind: str, root: Path, request: pytest.FixtureRequest) -> BlobTarget:
    return local_blobs(root / "shared-blobs") if kind == "file" else _s3_target(request)


@pytest.fixture(scope="module", params=BLOB_KINDS)
def blob_kind(request: pytest.FixtureRequest) -> str:
    """The shared blob store of this run: ``file`` or ``s3``."""
    return str(request.param)


@pytest.fixture(scope="module")
def replica_database(blob_kind: str, postgres_url: str) -> Iterator[str]:
    """A database of its own for the module's deployment of ``blob_kind`` (``postgres_url``
    decides whether PostgreSQL is there: skipped locally without one, a failure in CI).

    It depends on ``blob_kind`` so that the ``s3`` deployment does not find the ``file``
    one's database: a data directory without an id file *joins* a database that has a
    deployment, and the joining replica writes no administrator key.
    """
    with fresh_database(POSTGRES_ADMIN_URL) as url:
        yield url


@pytest.fixture(scope="module")
def deployment(blob_kind: str, replica_database: str, request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Three replicas shared by the tests of a module (each uses tenants of its own)."""
    root = tmp_path_factory.mktemp("replicas")
    with running_deployment(root, replica_database,
                            _blob_target(blob_kind, root, request)) as running:
        yield running


@pytest.fixture
def own_deployment(blob_kind: str, postgres_url: str, request: pytest.FixtureRequest,
                   tmp_path: Path) -> Iterator[Deployment]:
    """Three replicas of a deployment for this test alone (it may kill one)."""
    with fresh_database(POSTGRES_ADMIN_URL) as url, \
            running_deployment(tmp_path, url, _blob_target(blob_kind, tmp_path, request)) \
            as running:
        yield running
