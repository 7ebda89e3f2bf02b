"""Applying fixes: text edits from CST replacements, verified before writing.

A fix's edits are applied to the source text (highest position first, skipping
any edit that overlaps one already taken), the result is re-parsed with
libcst and checked again, and the loop repeats until no applicable fix is
left, so ``--fix`` twice changes nothing the second time. A round that does
not re-parse is discarded whole. Edits are located on the parser's lines
(split on ``\n``, ``\r\n`` and ``\r`` only). Files are written atomically,
to a symlink's target, with their mode kept; a file without write permission
is left alone and reported.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from qig_guard.config import Config
from qig_guard.engine.checker import check_text
from qig_guard.engine.findings import Edit, Finding
from qig_guard.engine.parsing import ParseRefused, line_starts, parse, split_lines, with_deep_stack

if TYPE_CHECKING:
    from qig_guard.facts.project import ProjectFacts
    from qig_guard.rules.base import Rule

MAX_ROUNDS = 10


def apply_edits(source: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping ``edits`` to ``source`` (overlapping ones are skipped)."""
    starts = line_starts(source)  # the parser's lines: never split on form feed or U+2028

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
            with_deep_stack(partial(parse, candidate))
        except cst.ParserSyntaxError as error:
            return FixOutcome(source, applied, findings, f"a fix did not re-parse: {error.message}")
        except (ParseRefused, RecursionError, MemoryError, ValueError) as error:
            return FixOutcome(source, applied, findings, f"a fix did not re-parse: {error}")
        source = candidate
        applied += len(fixes)
        findings = check_text(path, source, config, rules, project).findings
    return FixOutcome(source, applied, findings)


class NotWritten(Exception):
    """A fixed file could not be written; the message says why."""


def _temporary_pattern(name: str) -> re.Pattern[str]:
    """Names of ``write_atomic``'s temporary files for ``name`` (mkstemp: 8 characters)."""
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp")


def remove_orphans(path: Path) -> None:
    """Delete temporary files a killed ``write_atomic`` left next to ``path``'s target."""
    target = Path(os.path.realpath(path))
    pattern = _temporary_pattern(target.name)
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace the file ``path`` names (through symlinks) with ``data``, keeping its mode.

    Written to a temporary file in the same directory and renamed into place.
    Raises NotWritten for a file without write permission and for any OS error.
    """
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        if not mode & 0o222 or not os.access(target, os.W_OK):
            raise NotWritten(f"{target} is not writable (mode {mode:04o}); left unchanged")
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise NotWritten(f"cannot write {target}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise NotWritten(f"cannot write {target}: {error.strerror or error}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            split_lines(before),
            split_lines(after),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    )
