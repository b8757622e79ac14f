"""`nexus demo` end to end: the guide's scripts against a real server process, on the
embedded SQLite default and on a fresh PostgreSQL database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from nexus.cli.demo import STEPS, find_examples
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_reachable

HEADINGS = ["Step 1: Start Multi-Tenant Nexus Server", *(s.heading for s in STEPS),
            "Verification: each claim, checked through the SDK", "Summary"]
CLAIMS = ["Bob (beta) is denied Acme's files", "Alice's listing holds only /tenants/acme",
          "a share is readable, then refused after revoke", "usage is counted by the server",
          "quotas are enforced by the server", "a suspended tenant's key is refused",
          "export archives are complete", "the deleted tenant is gone",
          "fleet metrics agree with the tenant list", "trial, upgrade and onboarding"]


def run_demo(*args: str, examples: Path | None = None
             ) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    if examples is not None:
        env["NEXUS_DEMO_EXAMPLES"] = str(examples)
    env["COLUMNS"] = "200"  # one line per heading and table row
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "nexus.cli", "demo", *args],
                            capture_output=True, text=True, encoding="utf-8", env=env,
                            timeout=120)
    return result, time.monotonic() - started


def assert_demo_passed(result: subprocess.CompletedProcess[str], seconds: float) -> None:
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for heading in HEADINGS:
        assert heading in out, f"missing heading {heading!r}"
    for step in STEPS:
        assert re.search(rf"✓ {re.escape(step.script)}: exit 0", out), step.script
    for claim in CLAIMS:
        assert re.search(rf"│ [^│]*{re.escape(claim)}[^│]*│ held", out), claim
    assert "FAILED" not in out and "every claim held" in out
    assert_counts_agree(out)
    assert_cleaned_up(out)
    assert seconds < 60, f"the demo took {seconds:.0f} s"


def assert_counts_agree(out: str) -> None:
    """The guide's scripts count entries as "files"; the demo's own lines must say what
    those numbers are made of, and add up to them."""
    for user, shown, tenant in re.findall(r"(Alice|Bob) can see (\d+) (\w+) files", out):
        note = re.search(rf"{user.lower()}'s (\d+) entries under /tenants/{tenant.lower()} "
                         r"are (\d+) files? and (\d+) director", out)
        assert note, f"no breakdown of {user}'s listing"
        assert int(note[1]) == int(shown) == int(note[2]) + int(note[3])
    total = re.search(r"Total files: (\d+)", out)
    wrote = re.search(r"Wrote \S+: (\d+) entries \((\d+) files? of \d+ bytes, (\d+) director",
                      out)
    assert total and wrote, "no export lines"
    assert int(total[1]) == int(wrote[1]) == int(wrote[2]) + int(wrote[3])


def assert_cleaned_up(out: str) -> None:
    assert "server stopped (SIGTERM, exit 0)" in out
    # The server is gone and its temporary directory removed.
    data_dir = re.search(r"--data-dir (\S+)", out)
    url = re.search(r"curl (http://127\.0\.0\.1:\d+)/health", out)
    assert data_dir and url
    assert not Path(data_dir.group(1)).parent.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(url.group(1) + "/health", timeout=2)


def test_demo_on_sqlite() -> None:
    assert_demo_passed(*run_demo())


def test_a_failing_step_fails_the_demo(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(find_examples(), examples)
    script = examples / "tenant_isolation_demo.py"
    script.write_text(script.read_text().replace(
        "bob_files = bob.list", "raise SystemExit(3)\nbob_files = bob.list"))
    result, _ = run_demo(examples=examples)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"│ Step 3: tenant_isolation_demo\.py runs\s*│ FAILED\s*│ exit 3",
                     result.stdout)
    assert "1 of 18 claims failed" in result.stdout
    assert_cleaned_up(result.stdout)


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (the demo refuses a used one), dropped after."""
    problem = _postgres_reachable()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    name = f"nexus_demo_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url.replace("postgresql+psycopg://", "postgresql://")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_demo_on_postgresql(fresh_postgres_url: str) -> None:
    assert_demo_passed(*run_demo("--database-url", fresh_postgres_url))
    again, _ = run_demo("--database-url", fresh_postgres_url)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "database is not empty" in " ".join(again.stderr.split())
