"""The docs run as written: the README's quickstart and docs/getting-started.md, pasted
top to bottom against one fresh ``nexus serve``, in that order (a reader follows one
and then the other), must succeed.

Every ``bash`` and ``python`` block runs in the reader's working directory (here a
temporary one whose ``nexus-data`` is the server's data directory), with the project's
virtual environment first on ``PATH`` as ``. .venv/bin/activate`` makes it. The runner
starts the server itself, so the lines that install or start one (``make …``, ``nexus
serve …``, ``python -m venv …``, ``. .venv/bin/activate``) are the only ones it leaves
out, and ``http://localhost:8080`` becomes the server's real address; nothing else is
changed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.serving import NexusProcess

ROOT = Path(__file__).resolve().parents[2]
DOCS = [(ROOT / "README.md", "## Five-minute quickstart"), (ROOT / "docs/getting-started.md", None)]
_BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
#: Lines a reader runs to install or start the server: the runner has done both.
_SETUP = re.compile(r"^\s*(make\b|nexus serve\b|\.venv/bin/nexus serve\b|python -m venv\b|"
                    r"\. \.venv/bin/activate\b)")


def blocks(path: Path, section: str | None) -> list[tuple[str, str]]:
    """The runnable blocks of ``path`` (of its ``section`` only, when given), in order."""
    text = path.read_text()
    if section is not None:
        start = text.index(section)
        end = text.find("\n## ", start + len(section))
        text = text[start:end if end != -1 else None]
    found = []
    for language, body in _BLOCK.findall(text):
        kept = [line for line in body.splitlines() if not _SETUP.match(line)]
        if any(line.strip() and not line.lstrip().startswith("#") for line in kept):
            found.append((language, "\n".join(kept) + "\n"))
    return found


def test_the_blocks_are_found() -> None:
    """The runner sees what a reader sees: a quickstart with its health check and code,
    getting started with its remote, embedded and 'try it' blocks."""
    readme = blocks(*DOCS[0])
    assert [language for language, _ in readme] == ["bash", "python"]
    assert "curl" in readme[0][1] and "make serve" not in readme[0][1]
    started = blocks(*DOCS[1])
    assert [language for language, _ in started].count("python") >= 2
    assert any("python - <<'EOF'" in body for _, body in started)


def test_quickstart_then_getting_started_run_as_written(tmp_path: Path) -> None:
    server = NexusProcess(tmp_path / "nexus-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        for path, section in DOCS:
            for number, (language, body) in enumerate(blocks(path, section), 1):
                code = body.replace("http://localhost:8080", server.url)
                command = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" \
                    else [sys.executable, "-c", code]
                ran = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                                     text=True, timeout=120)
                where = f"{path.relative_to(ROOT)}, {language} block {number}"
                assert ran.returncode == 0, f"{where} failed:\n{code}\n{ran.stdout}{ran.stderr}"
                if "isolated" in code:
                    assert "isolated" in ran.stdout, where
    finally:
        server.stop()
    assert "Traceback" not in server.output()
