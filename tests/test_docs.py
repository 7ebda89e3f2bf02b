"""Generated documentation stays in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from qig_guard.rule_info import RULES_DOC, explain, rules_reference
from qig_guard.rules import all_codes

ROOT = Path(__file__).resolve().parent.parent


def test_rules_reference_is_current() -> None:
    committed = (ROOT / RULES_DOC).read_text(encoding="utf-8")
    assert committed == rules_reference(), "run `python -m qig_guard.docs` and commit docs/rules.md"


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
