"""``--fix``, ``--unsafe-fixes`` and ``--diff`` over a run's results."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from qig_guard.config import Config
from qig_guard.discovery import relative_posix
from qig_guard.findings import Finding
from qig_guard.fixer import applicable, fix_source, unified_diff, write_atomic
from qig_guard.rules import load_rules, select_codes
from qig_guard.runner import RunResult, file_codes
from qig_guard.source import SourceError, decode


@dataclass
class FixReport:
    findings: list[Finding] = field(default_factory=list)
    fixed: int = 0
    diff: str = ""


def apply_fixes(result: RunResult, config: Config, *, unsafe: bool, write: bool) -> FixReport:
    """Fix every file with applicable findings; return what is left to report."""
    to_fix = sorted({f.path for f in result.findings if applicable(f, unsafe)})
    report = FixReport()
    remaining = {path: [] for path in to_fix}  # type: dict[str, list[Finding]]
    for display in to_fix:
        path = result.paths[display]
        file_config = result.configs.get(display, config)
        selected = select_codes(file_config.select, file_config.ignore)
        data = path.read_bytes()
        try:
            source, encoding = decode(data, file_config.max_file_size)
        except SourceError:
            continue  # a file that cannot be decoded had no fixable finding
        codes = file_codes(relative_posix(path, file_config.root), selected, file_config)
        outcome = fix_source(
            display, source, file_config, load_rules(codes), unsafe, result.project
        )
        if outcome.refused:
            print(f"qig-guard: {display}: fixes not applied: {outcome.refused}", file=sys.stderr)
            del remaining[display]
            continue
        remaining[display] = [f for f in outcome.remaining if f.code in codes]
        if outcome.source == source:
            continue
        report.fixed += outcome.applied
        if write:
            write_atomic(path, outcome.source.encode(encoding))
        else:
            report.diff += unified_diff(display, source, outcome.source)
    report.findings = sorted(
        [f for f in result.findings if f.path not in remaining]
        + [f for findings in remaining.values() for f in findings],
        key=lambda finding: finding.sort_key,
    )
    return report
