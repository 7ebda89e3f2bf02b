"""Running one rule over a dedented snippet, shared by the rule test files."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from qig_guard.config import Config
from qig_guard.engine.checker import FileResult, check_text, own_index
from qig_guard.engine.checker import check_source as gated_check
from qig_guard.engine.findings import Finding, ordered
from qig_guard.engine.gating import select
from qig_guard.engine.source import SourceError, decode
from qig_guard.facts.project import ProjectFacts
from qig_guard.rules.base import Rule

# A project's own matcher: it defines the basin setter and models keep one in
# `basin_matcher`, so the project index shows what `x.basin_matcher` holds and the QIG002
# fix of `model.basin_matcher.target_basin = b` is safe where this file is in the run.
MATCHER_MODULE = """\
class BasinMatcher:
    def set_target_basin(self, basin):
        self.target_basin = basin


class Model:
    def __init__(self):
        self.basin_matcher = BasinMatcher()
"""


def _keys(result: FileResult) -> list[tuple[object, ...]]:
    return [(*f.sort_key, f.end_line, f.end_column, f.message, f.fix) for f in result.findings]


def check_source(
    path: str,
    data: bytes,
    config: Config,
    rules: list[type[Rule]],
    project: ProjectFacts | None = None,
) -> FileResult:
    """``checker.check_source``, proven to agree with a plain run: every selected rule
    over the whole file, no gate, no slicing (the trigger-agreement check)."""
    gated = gated_check(path, data, config, rules, project)
    try:
        source, _ = decode(data, config.max_file_size)
    except SourceError:
        return gated  # not decoded: nothing to compare
    plain = check_text(path, source, config, [r for r in rules if r.code != "QIG000"], project)
    rule_codes = {rule.code for rule in rules} - {"QIG000"}
    found = [k[1:5] for k in _keys(gated) if k[3] in rule_codes]
    expected = [k[1:5] for k in _keys(plain) if k[3] in rule_codes]
    assert found == expected, (
        f"a gate changed findings in:\n{source}\ngated: {found}\nplain: {expected}"
    )
    assert _keys(gated) == _keys(plain) or found != expected
    return gated


def rule_findings(
    rules: type[Rule] | list[type[Rule]], source: str, config: Config | None = None
) -> list[Finding]:
    """Findings of ``rules`` (the first one's code) on ``source``, in report order; the
    file must check cleanly: no syntax error and no crashed rule."""
    selected = rules if isinstance(rules, list) else [rules]
    data = textwrap.dedent(source).encode()
    result = check_source("snippet.py", data, config or Config(), selected)
    assert not result.internal_error, result.findings
    assert not any(f.code == "QIG000" for f in result.findings), result.findings
    return ordered(f for f in result.findings if f.code == selected[0].code)


def example_and_corpus_sources(count: int) -> list[tuple[str, str]]:
    """The shipped examples and ``count`` generated corpus files, as (name, text) pairs."""
    root = Path(__file__).resolve().parent.parent
    sources = [
        (path.name, path.read_text(encoding="utf-8"))
        for path in sorted((root / "examples").rglob("*.py"))
    ]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        import corpus
    finally:
        sys.path.pop(0)
    return sources + [(f"corpus-{i}.py", text) for i, text in enumerate(corpus.sample(count))]


def gate_passes(
    rule: type[Rule], source: str, config: Config | None = None, project: ProjectFacts | None = None
) -> bool:
    """Whether the engine runs ``rule`` on ``source`` at all (its gate holds in some
    unit): a look-alike it does not pass is not even parsed."""
    config = config or Config()
    index = project if project is not None else own_index(source, config)
    return rule in select("snippet.py", source, config, [rule], index).rules
