"""One policy: every authorization decision is the enforcement point's.

``service/access.py`` (``AccessGate``, with the evaluation engine behind it in
``service/permissions.py``) is the only code that may read ``principal.is_admin`` or
compare a principal's tenant with anything. A decision made anywhere else is how the
holes of the past crept in (three copies of ``_require_admin``, a tenant comparison that
forgot incarnations), so this test reads the source and fails on any new one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nexus

SOURCE = Path(nexus.__file__).parent
#: The enforcement point and its engine; ``types.py`` defines ``Principal`` itself.
ALLOWED = {"service/access.py", "service/permissions.py", "types.py"}
#: Where a flag of the same name is data, not a decision: the stored key row becomes the
#: principal (the credential decides who you are), and table columns.
DATA = {("service/keys.py", "record.is_admin")}
PRINCIPALS = {"principal", "caller", "p", "as_principal"}


def _is_principal_tenant(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "tenant_id"
            and isinstance(node.value, ast.Name) and node.value.id in PRINCIPALS)


def _decisions(path: Path, relative: str) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "is_admin" \
                and (relative, ast.unparse(node)) not in DATA:
            found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Compare) and any(
                _is_principal_tenant(side) for side in [node.left, *node.comparators]) \
                and not all(isinstance(c, ast.Constant) and c.value is None
                            for c in node.comparators):
            found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_authorization_decision_outside_the_enforcement_point() -> None:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).as_posix()
        if relative in ALLOWED or relative.startswith("store/"):
            continue
        found.extend(_decisions(path, relative))
    assert found == [], "ask service/access.py (AccessGate) instead:\n" + "\n".join(found)


def test_the_scan_sees_a_decision(tmp_path: Path) -> None:
    """The control: the rule recognises the shapes it forbids."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f(principal, t):\n"
                      "    if principal.is_admin or principal.tenant_id == t:\n"
                      "        return t != principal.tenant_id\n")
    assert len(_decisions(sample, "sample.py")) == 3


def test_exactly_one_function_creates_a_tenant_record() -> None:
    callers = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "register" \
                    and "TenantRepository" in ast.unparse(node.func.value):
                callers.append(relative)
    assert callers == ["service/tenants.py"]
