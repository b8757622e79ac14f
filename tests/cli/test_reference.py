"""docs/cli.md is the CLI's own description of itself, never an older one."""

from __future__ import annotations

from pathlib import Path

from nexus.cli.reference import cli_reference

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_is_the_generated_reference() -> None:
    assert PAGE.read_text() == cli_reference(), (
        "docs/cli.md is stale: run `make docs` (python -m nexus.cli.reference > docs/cli.md)")


def test_the_reference_names_every_command_and_flag_as_the_cli_does() -> None:
    page = cli_reference()
    for group in ("fs", "tenants", "keys", "shares", "audit", "rebac", "admin"):
        assert f"## `nexus {group}`" in page
    assert "### `nexus tenants bill`" in page and "### `nexus admin create-key`" in page
    assert "`--user, --user-id <str>`" in page  # the old spelling, kept as an alias
    assert "<bool>" not in page  # a flag takes no value (nexus.cli.app.tidy_help)
