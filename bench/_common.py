"""The helpers the scripts in ``bench/`` share: throw-away PostgreSQL databases, the
machine facts of a report header, sample statistics, the cProfile summary and a
``nexus serve`` child process that is healthy when its constructor returns.

It is not a benchmark; the scripts import it as ``from _common import ...``, which works
because ``python bench/<name>.py`` puts ``bench/`` first on ``sys.path``. It holds only
what two or more scripts use in the same form: each script keeps its own result rows,
targets and report layout, so that changing one report cannot shift another.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from nexus._serve import ServeProcess, free_port

#: The PostgreSQL server (and maintenance database) the scripts create their throw-away
#: databases on unless ``--database-url`` names another.
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MB = 1_000_000  # throughput and RSS figures are in MB = 10**6 bytes
_BARE_APP = Path(__file__).with_name("_bare_app.py")


# -- PostgreSQL ------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    """``url`` as psycopg takes it: the engine accepts SQLAlchemy's
    ``postgresql+psycopg://`` spelling, libpq does not."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh database ``<prefix><random>`` on the server of ``admin_url``, as a URL;
    dropped on exit, even if the block fails.

    ``CREATE DATABASE`` cannot run in a transaction, hence autocommit; ``WITH (FORCE)``
    because a pool the run left open would otherwise keep the database alive.
    """
    import psycopg  # lazily: the SQLite-only runs need no PostgreSQL driver
    from psycopg import sql

    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    conninfo = libpq_url(admin_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{conninfo.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


@contextmanager
def throwaway_store(backend: str, admin_url: str, *, db_prefix: str, dir_prefix: str,
                    tmp_parent: str | None) -> Iterator[tuple[Path, str | None]]:
    """A new temporary directory and, for ``backend == "postgresql"``, a throw-away
    database (its URL; None for SQLite); both removed on exit, the database first
    because whatever used it has stopped by then."""
    root = Path(tempfile.mkdtemp(prefix=dir_prefix, dir=tmp_parent))
    try:
        if backend == "sqlite":
            yield root, None
        else:
            with postgres_database(admin_url, db_prefix) as url:
                yield root, url
    finally:
        shutil.rmtree(root, ignore_errors=True)


def postgres_version(admin_url: str) -> str:
    """The server's version, or ``unreachable (<error>)``: a header line must not end
    the run before it has measured anything."""
    import psycopg

    try:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception as exc:  # noqa: BLE001 - shown in the header
        return f"unreachable ({exc})"
    return row[0] if row else "?"


def script_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser for a script: ``--help`` gives the first paragraph of its docstring, with
    its line breaks (the rest of the docstring is for readers of the source)."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")


def add_database_url_option(parser: argparse.ArgumentParser, db_prefix: str,
                            lead: str = "PostgreSQL server") -> None:
    """``--database-url``: where the throw-away ``<db_prefix>*`` databases go."""
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL,
                        help=f"{lead} (maintenance database) on which a throw-away "
                             f"{db_prefix}* database is created and dropped "
                             f"(default {DEFAULT_ADMIN_URL})")


# -- machine facts for the report header -----------------------------------------------


def filesystem_of(path: str) -> str:
    """The mount point and type holding ``path`` (Linux), for judging fsync costs."""
    try:
        with open("/proc/mounts") as mounts:
            entries = [line.split()[:3] for line in mounts]
    except OSError:
        return "?"
    real = os.path.realpath(path)
    best = max((e for e in entries if real == e[1] or real.startswith(e[1].rstrip("/") + "/")),
               key=lambda e: len(e[1]), default=None)
    return f"{best[2]} on {best[1]}" if best else "?"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load_averages() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none): another
    process on the machine skews every figure, so a report says how busy it was."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def load_average() -> str:
    loads = load_averages()
    return "?" if loads is None else " ".join(f"{x:.2f}" for x in loads)


def uptime() -> str:
    """``uptime``'s line (the load average, and for how long the machine has run)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load average: {load_average()}"


def date_line() -> str:
    return f"date:      {dt.datetime.now().astimezone().isoformat(timespec='seconds')}"


def machine_line() -> str:
    return f"machine:   {os.cpu_count()} CPUs ({cpu_model()}), {platform.platform()}"


def python_version() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}"


def data_dir_line(tmp: str) -> str:
    return f"data dir:  {tmp} ({filesystem_of(tmp)})"


def git(*args: str) -> str | None:
    """``git <args>``'s output in the checkout holding ``bench/`` ("" if git fails there,
    None without git), so a report names the code it measured."""
    repo = Path(__file__).resolve().parent.parent
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


# -- samples ---------------------------------------------------------------------------


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (with 3 samples, p99 is the slowest one)."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def ops_per_second(samples: list[float], wall: float | None = None) -> float:
    """Calls per second: over the sum of the call times (sequential throughput), or
    over ``wall`` when the calls overlapped (threads)."""
    elapsed = wall if wall is not None else sum(samples)
    return len(samples) / elapsed if elapsed > 0 else float("inf")


def timed(fn: Callable[[int], Any], n: int,
          profiler: cProfile.Profile | None = None) -> list[float]:
    """Call ``fn(i)`` for i in range(n); each call's duration in seconds. With
    ``profiler``, the loop (and only the loop: no setup, no warm-up) runs under it."""
    samples = []
    clock = time.perf_counter
    if profiler is not None:
        profiler.enable()
    try:
        for i in range(n):
            start = clock()
            fn(i)
            samples.append(clock() - start)
    finally:
        if profiler is not None:
            profiler.disable()
    return samples


class Samples:
    """The figures of a result row that holds ``samples``, one call's seconds each (and
    ``wall``, the wall-clock seconds, when the calls overlapped); a mixin, so that each
    script's dataclass keeps its own fields in its own order."""

    samples: list[float]
    wall: float | None = None

    @property
    def iters(self) -> int:
        return len(self.samples)

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.samples, 99) * 1000

    @property
    def ops_per_s(self) -> float:
        return ops_per_second(self.samples, self.wall)


def tally(judged: Iterable[tuple[str, str]]) -> str:
    """``N PASS, M MISS (names of the misses)`` of (name, verdict) pairs."""
    verdicts = list(judged)
    misses = [name for name, verdict in verdicts if verdict == "MISS"]
    return (f"{len(verdicts) - len(misses)} PASS, {len(misses)} MISS"
            + (f" ({', '.join(misses)})" if misses else ""))


def top_functions(profiler: cProfile.Profile, script: str) -> str:
    """The 15 functions with the largest cumulative and the 10 with the largest own time.

    The frames of ``script`` (a file name such as ``engine.py``) and of this module are
    hidden, so the lists start at the code under test.
    """
    hide_bench = f"^(?!({re.escape(script)}|_common\\.py):)"
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(hide_bench, 15)
    stats.sort_stats("tottime").print_stats(hide_bench, 10)
    return out.getvalue().strip()


class RssSampler:
    """Peak resident-set growth of this process and, given its pid, of another (the
    server), sampled every 50 ms while the ``with`` block runs.

    A thread, not one reading at the end: what streaming must bound is the peak.
    """

    def __init__(self, server_pid: int | None = None, interval: float = 0.05) -> None:
        self._client = psutil.Process()
        self._server = psutil.Process(server_pid) if server_pid else None
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.client_base = self.client_peak = 0
        self.server_base = self.server_peak = 0

    def _sample(self) -> None:
        self.client_peak = max(self.client_peak, self._client.memory_info().rss)
        if self._server is not None:
            try:
                self.server_peak = max(self.server_peak, self._server.memory_info().rss)
            except psutil.Error:
                pass

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self.client_base = self.client_peak = self._client.memory_info().rss
        if self._server is not None:
            self.server_base = self.server_peak = self._server.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def client_growth(self) -> int:
        """Bytes."""
        return self.client_peak - self.client_base

    @property
    def client_growth_mb(self) -> float:
        return self.client_growth / MB

    @property
    def server_growth_mb(self) -> float | None:
        return None if self._server is None else (self.server_peak - self.server_base) / MB


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of all threads of ``pid`` (None if unknown or gone)."""
    if pid is None:
        return None
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


# -- a server under test ---------------------------------------------------------------


class ServerProcess(ServeProcess):
    """``python -m nexus.cli serve`` on a free loopback port, as the guide's Step 1 runs it,
    healthy when the constructor returns (:class:`nexus._serve.ServeProcess`; a large
    upload may take a while to drain, hence the minute to stop)."""

    def __init__(self, data_dir: Path, database_url: str | None, log_path: Path,
                 log_level: str = "info") -> None:
        super().__init__(data_dir, database_url, log_path=log_path,
                         extra_args=("--log-level", log_level), startup_seconds=90,
                         stop_seconds=60)
        self.start()


# -- floors ----------------------------------------------------------------------------


@contextmanager
def bare_app(workers: int = 1) -> Iterator[str]:
    """The least an ASGI app on uvicorn can answer a GET with (``_bare_app.py``: no
    framework, no database), with ``workers`` processes: the round-trip floor."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "_bare_app:app", "--app-dir", str(_BARE_APP.parent),
         "--port", str(port), "--workers", str(workers), "--log-level", "warning",
         "--no-access-log"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def durable_create_samples(where: Path, n: int, size: int = 1024) -> list[float]:
    """Seconds of ``n`` durable creates of ``size`` bytes in ``where``: write, fsync,
    rename, fsync of the directory — the least a durable small write costs on this disk."""
    scratch = Path(tempfile.mkdtemp(dir=where, prefix="floor-create-"))
    payload = os.urandom(size)
    dir_fd = os.open(scratch, os.O_RDONLY)

    def one(i: int) -> None:
        tmp = scratch / f".{i}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, scratch / f"{i}.bin")
        os.fsync(dir_fd)

    try:
        return timed(one, n)
    finally:
        os.close(dir_fd)
        shutil.rmtree(scratch, ignore_errors=True)
