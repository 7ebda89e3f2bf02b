"""Applying fixes: text edits from CST replacements, verified before writing.

A fix's edits are applied to the source text (highest position first, skipping
any edit that overlaps one already taken), the result is re-parsed with
libcst and checked again, and the loop repeats until no applicable fix is
left, so ``--fix`` twice changes nothing the second time. A round that does
not re-parse is discarded whole. Files are written atomically with their
mode kept.
"""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qig_guard.checker import check_text
from qig_guard.config import Config
from qig_guard.findings import Edit, Finding

if TYPE_CHECKING:
    from qig_guard.facts.project import ProjectFacts
    from qig_guard.rules.base import Rule

MAX_ROUNDS = 10


def _offsets(source: str) -> list[int]:
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def apply_edits(source: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping ``edits`` to ``source`` (overlapping ones are skipped)."""
    starts = _offsets(source)

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    spans = sorted(
        ((offset(e.line, e.column), offset(e.end_line, e.end_column), e.content) for e in edits),
        reverse=True,
    )
    result = source
    limit = len(source) + 1
    for start, end, content in spans:
        if end > limit:
            continue
        result = result[:start] + content + result[end:]
        limit = start
    return result


def applicable(finding: Finding, unsafe: bool) -> bool:
    return finding.fix is not None and (finding.fix.safe or unsafe)


@dataclass
class FixOutcome:
    """The fixed source, how many fixes went in, and any reason a round was refused."""

    source: str
    applied: int
    remaining: list[Finding]
    refused: str | None = None


def fix_source(
    path: str,
    source: str,
    config: Config,
    rules: list[type[Rule]],
    unsafe: bool,
    project: ProjectFacts | None = None,
) -> FixOutcome:
    """Apply fixes to ``source`` until none is left; re-parse and re-check each round."""
    import libcst as cst

    findings = check_text(path, source, config, rules, project).findings
    applied = 0
    for _ in range(MAX_ROUNDS):
        fixes = [f.fix for f in findings if applicable(f, unsafe) and f.fix is not None]
        if not fixes:
            break
        candidate = apply_edits(source, (edit for fix in fixes for edit in fix.edits))
        if candidate == source:
            break
        try:
            cst.parse_module(candidate)
        except cst.ParserSyntaxError as error:
            return FixOutcome(source, applied, findings, f"a fix did not re-parse: {error.message}")
        source = candidate
        applied += len(fixes)
        findings = check_text(path, source, config, rules, project).findings
    return FixOutcome(source, applied, findings)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` via a temporary file and rename, keeping its mode."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    )
