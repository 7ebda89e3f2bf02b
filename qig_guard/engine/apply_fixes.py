"""``--fix``, ``--unsafe-fixes`` and ``--diff`` over a run's results."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from qig_guard.config import Config
from qig_guard.engine.findings import Finding, ordered
from qig_guard.engine.fixer import (
    NotWritten,
    applicable,
    fix_source,
    remove_orphans,
    unified_diff,
    write_atomic,
)
from qig_guard.engine.results import RunResult
from qig_guard.engine.selection import codes_for
from qig_guard.engine.source import SourceError, decode, read_regular
from qig_guard.rules import load_rules


@dataclass
class FixReport:
    findings: list[Finding] = field(default_factory=list)
    fixed: int = 0
    diff: str = ""
    # Files that had fixes but could not be read or written (reported on stderr).
    failures: int = 0


def apply_fixes(result: RunResult, config: Config, *, unsafe: bool, write: bool) -> FixReport:
    """Fix every file with applicable findings; return what is left to report."""
    to_fix = sorted({f.path for f in result.findings if applicable(f, unsafe)})
    report = FixReport()
    remaining = {path: [] for path in to_fix}  # type: dict[str, list[Finding]]
    if write:
        for path in result.paths.values():
            remove_orphans(path)
    for display in to_fix:
        path = result.paths[display]
        file_config = result.configs.get(display, config)
        try:
            source, encoding = decode(
                read_regular(path, file_config.max_file_size), file_config.max_file_size
            )
        except (OSError, SourceError) as error:  # changed since it was checked
            print(f"qig-guard: {display}: fixes not applied: {error}", file=sys.stderr)
            del remaining[display]
            report.failures += 1
            continue
        codes = codes_for(path, file_config)
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
        if write:
            try:
                write_atomic(path, outcome.source.encode(encoding))
            except (NotWritten, UnicodeEncodeError) as error:
                print(f"qig-guard: {display}: fixes not written: {error}", file=sys.stderr)
                del remaining[display]
                report.failures += 1
                continue
            report.fixed += outcome.applied
        else:
            report.fixed += outcome.applied
            report.diff += unified_diff(display, source, outcome.source)
    report.findings = ordered(
        [f for f in result.findings if f.path not in remaining]
        + [f for findings in remaining.values() for f in findings]
    )
    return report
