"""Rule selection: prefixes, ALL, ignores, per-file ignores and preview rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from qig_guard import rules
from qig_guard.cli import build_parser, config_resolver
from qig_guard.config import Config, parse_table
from qig_guard.engine.selection import codes_for, selected_codes
from qig_guard.rules import all_codes, load_rule, preview_codes, select_codes


def test_preview_codes_agree_with_the_rule_classes() -> None:
    assert preview_codes() == {code for code in all_codes() if load_rule(code).preview}


@pytest.mark.parametrize(
    ("line", "preview"),
    [
        ("    preview = True\n", True),
        ("    preview: ClassVar[bool] = True\n", True),
        ("    preview = False\n", False),
        ("preview = True\n", False),  # a module global, not a class attribute
        ("    previewed = True\n", False),
    ],
)
def test_preview_is_read_from_the_class_body(line: str, preview: bool) -> None:
    source = f"class NewRule(Rule):\n    code = 'QIG099'\n{line}"
    assert bool(rules._PREVIEW.search(source)) is preview


@pytest.fixture
def qig002_in_preview(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "preview_codes", lambda: frozenset({"QIG002"}))


@pytest.mark.usefixtures("qig002_in_preview")
def test_preview_rule_needs_its_code_or_preview() -> None:
    assert "QIG002" not in select_codes(["ALL"], [])
    assert "QIG002" not in select_codes(["QIG00"], [])
    assert "QIG001" in select_codes(["QIG00"], [])
    assert select_codes(["QIG002"], []) == ("QIG002",)
    assert "QIG002" in select_codes(["ALL"], [], preview=True)
    assert "QIG002" in select_codes(["QIG00"], [], preview=True)
    assert "QIG002" not in select_codes(["ALL"], ["QIG002"], preview=True)


@pytest.mark.usefixtures("qig002_in_preview")
def test_preview_from_pyproject_and_command_line(tmp_path: Path) -> None:
    assert "QIG002" not in selected_codes(Config())
    assert "QIG002" in selected_codes(parse_table({"preview": True}))
    assert "QIG002" in codes_for(tmp_path / "m.py", parse_table({"preview": True}))
    args = build_parser().parse_args(["check", "--isolated", "--preview"])
    assert "QIG002" in selected_codes(config_resolver(args).for_path(tmp_path / "m.py"))
    plain = build_parser().parse_args(["check", "--isolated"])
    assert "QIG002" not in selected_codes(config_resolver(plain).for_path(tmp_path / "m.py"))


def test_rules_and_docs_mark_preview_rules(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qig_guard.cli import main
    from qig_guard.engine.rule_catalog import readme_table, rule_page

    rule = load_rule("QIG002")
    assert "(preview)" not in readme_table()
    monkeypatch.setattr(rule, "preview", True)
    assert main(["rules"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "(preview)" in listed["QIG002"] and "(preview)" not in listed["QIG001"]
    assert "| `direct-basin-assignment` (preview) |" in readme_table()
    assert "Preview: selected by its code or under `--preview` only." in rule_page(rule)
