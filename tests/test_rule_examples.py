"""Every rule's documented VALID and INVALID examples, run through the engine."""

from __future__ import annotations

import pytest
from rule_cases import check_source

from qig_guard.config import Config
from qig_guard.engine.fixer import fix_source
from qig_guard.rules import all_codes, load_rule
from qig_guard.rules.base import Invalid, Rule

RULES = [load_rule(code) for code in all_codes()]


def _cases(kind: str, fixed_only: bool = False) -> list[object]:
    cases = []
    for rule in RULES:
        for index, example in enumerate(getattr(rule, kind)):
            if fixed_only and example.fixed is None:
                continue
            cases.append(pytest.param(rule, example, id=f"{rule.code}-{kind.lower()}-{index}"))
    return cases


def _codes(rule: type[Rule], source: str) -> list[str]:
    result = check_source("example.py", source.encode(), Config(), [rule])
    return [finding.code for finding in result.findings]


@pytest.mark.parametrize(("rule", "example"), _cases("VALID"))
def test_valid_example_is_not_flagged(rule: type[Rule], example: str) -> None:
    assert _codes(rule, example) == []


@pytest.mark.parametrize(("rule", "example"), _cases("INVALID"))
def test_invalid_example_is_flagged(rule: type[Rule], example: Invalid) -> None:
    result = check_source("example.py", example.code.encode(), Config(), [rule])
    starts = [(f.line, f.column) for f in result.findings if f.code == rule.code]
    assert starts, f"{rule.code} does not flag its INVALID example"
    if example.line is not None or example.column is not None:
        assert (example.line, example.column) in starts, f"{rule.code} flags {starts}"


def test_some_invalid_examples_pin_their_position() -> None:
    pinned = [example for rule in RULES for example in rule.INVALID if example.line is not None]
    assert len(pinned) >= 3


@pytest.mark.parametrize(("rule", "example"), _cases("INVALID", fixed_only=True))
def test_invalid_example_fix(rule: type[Rule], example: Invalid) -> None:
    if example.unsafe:
        assert fix_source("example.py", example.code, Config(), [rule], unsafe=False).applied == 0
    outcome = fix_source("example.py", example.code, Config(), [rule], unsafe=example.unsafe)
    assert outcome.refused is None
    assert outcome.source == example.fixed
    again = fix_source("example.py", outcome.source, Config(), [rule], unsafe=example.unsafe)
    assert again.applied == 0


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_rule_is_documented(rule: type[Rule]) -> None:
    doc = rule.documentation()
    for section in ("## What it does", "## Why is this bad", "## Example", "## Use instead"):
        assert section in doc, f"{rule.code} docstring lacks {section!r}"
    fixes = any(example.fixed is not None for example in rule.INVALID)
    assert ("## Fix safety" in doc) == fixes, f"{rule.code}: 'Fix safety' iff the rule fixes"
    assert rule.name and rule.summary and rule.INVALID and rule.VALID
