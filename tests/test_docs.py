"""Generated documentation stays in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from qig_guard.engine.rule_catalog import (
    README,
    RULES_DOC,
    TABLE_END,
    TABLE_START,
    explain,
    readme_with_table,
    rules_reference,
)
from qig_guard.rules import all_codes

ROOT = Path(__file__).resolve().parent.parent


def test_rules_reference_is_current() -> None:
    committed = (ROOT / RULES_DOC).read_text(encoding="utf-8")
    assert committed == rules_reference(), (
        "run `python -m qig_guard.engine.docs` and commit docs/rules.md"
    )


def test_readme_rule_table_is_current() -> None:
    committed = (ROOT / README).read_text(encoding="utf-8")
    assert committed.count(TABLE_START) == committed.count(TABLE_END) == 1
    assert committed == readme_with_table(committed), (
        "run `python -m qig_guard.engine.docs` and commit README.md"
    )


def test_readme_table_is_replaced_between_its_markers() -> None:
    stale = f"# Title\n\n{TABLE_START}\n| stale |\n{TABLE_END}\n\nAfter.\n"
    fresh = readme_with_table(stale)
    assert "| stale |" not in fresh
    assert fresh.startswith(f"# Title\n\n{TABLE_START}\n| Code | Name |")
    assert fresh.endswith(f"|\n{TABLE_END}\n\nAfter.\n")


def test_readme_lists_every_rule_with_a_working_link() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    reference = (ROOT / RULES_DOC).read_text(encoding="utf-8")
    for code in all_codes():
        link = re.search(rf"\[{code}\]\(docs/rules\.md#([\w-]+)\)", readme)
        assert link, f"README.md does not link {code}"
        assert re.search(rf"^## {code} ", reference, re.MULTILINE)
        assert link.group(1).startswith(code.lower())


def test_explain_prints_every_rule() -> None:
    for code in all_codes():
        text = explain(code)
        assert text is not None and text.startswith(f"## {code} ")
    assert explain("QIG999") is None


def test_explain_prints_every_basin_code_with_one_full_stop() -> None:
    for number in range(100, 107):
        text = explain(f"QIG{number}")
        assert text is not None and text.startswith(f"## QIG{number} ")
        assert ".." not in text


def test_docs_name_the_real_fix_options() -> None:
    for name in ("README.md", RULES_DOC):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert not re.search(r"--unsafe-fix\b(?!es)", text), name


def test_runtime_names_in_the_rules_reference_exist() -> None:
    """`from qig_guard.runtime import ...` in the docs names exported functions
    (read from the package's __all__, so torch is not imported)."""
    import ast

    init = ast.parse((ROOT / "qig_guard" / "runtime" / "__init__.py").read_text())
    exported = next(
        ast.literal_eval(node.value)
        for node in init.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    reference = (ROOT / RULES_DOC).read_text(encoding="utf-8")
    imports = re.findall(r"from qig_guard\.runtime import ([\w, ]+)", reference)
    assert imports
    for names in imports:
        for name in names.split(","):
            assert name.strip() in exported, name
