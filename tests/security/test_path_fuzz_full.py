"""The path fuzz over the whole corpus on SQLite (``-m slow``).

The default suite sweeps a sample (``test_path_fuzz``); this module drives every entry
through every method. The tests and fixtures are those of ``test_path_fuzz``; only the
backend and the corpus differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import test_path_fuzz as base

pytestmark = pytest.mark.slow

# In the order the base module defines them: the later ones judge what the sweep left.
scratch, swept = base.scratch, base.swept
test_every_hostile_path_through_every_method = base.test_every_hostile_path_through_every_method
test_nothing_outside_acme_changed = base.test_nothing_outside_acme_changed
test_acme_holds_exactly_the_accepted_files_under_their_normal_forms = (
    base.test_acme_holds_exactly_the_accepted_files_under_their_normal_forms)
test_export_then_import_keeps_every_name_inside_its_tenant = (
    base.test_export_then_import_keeps_every_name_inside_its_tenant)

WHOLE_CORPUS = True


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, scratch: Path) -> Iterator[base.World]:
    yield from base.open_world(request, scratch, "sqlite")
