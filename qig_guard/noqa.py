"""``# noqa`` suppressions, with flake8's syntax.

``# noqa: QIG001,QIG004`` on a finding's line suppresses those codes; a bare
``# noqa`` suppresses every code unless ``strict-noqa`` is on, in which case
it suppresses nothing and is itself reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qig_guard.findings import Finding

_NOQA = re.compile(
    r"#\s*noqa(?P<sep>\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)

ALL = frozenset({"*"})


def directives(source: str) -> dict[int, frozenset[str]]:
    """Map 1-based line numbers to the codes their ``# noqa`` names (``ALL`` if bare)."""
    if "noqa" not in source and "NOQA" not in source.upper():
        return {}
    found: dict[int, frozenset[str]] = {}
    for number, line in enumerate(source.splitlines(), start=1):
        if "#" not in line:
            continue
        match = _NOQA.search(line)
        if match:
            codes = match.group("codes")
            found[number] = (
                frozenset(code.upper() for code in _CODE.findall(codes)) if codes else ALL
            )
    return found


def apply(findings: Iterable[Finding], source: str, strict: bool) -> list[Finding]:
    """Drop suppressed findings; under ``strict`` report bare ``# noqa`` that hides one."""
    by_line = directives(source)
    kept: list[Finding] = []
    bare_used: dict[int, Finding] = {}
    for finding in findings:
        codes = by_line.get(finding.line)
        if codes is None or (codes is not ALL and finding.code not in codes):
            kept.append(finding)
        elif codes is ALL and strict:
            kept.append(finding)
            bare_used.setdefault(finding.line, finding)
    for line, finding in bare_used.items():
        kept.append(
            Finding(
                path=finding.path,
                line=line,
                column=1,
                code="QIG000",
                message="bare `# noqa` (strict-noqa): name the codes, e.g. `# noqa: "
                f"{finding.code}`",
            )
        )
    return kept


def add_code(line: str, code: str) -> str:
    """``line`` (without its line break) with ``code`` added to its ``# noqa`` directive,
    or with a ``# noqa: CODE`` comment appended when it has none."""
    match = _NOQA.search(line) if "#" in line else None
    if match is None:
        return f"{line.rstrip()}  # noqa: {code}"
    codes = match.group("codes")
    if codes is None:  # a bare directive: name the code
        return f"{line[: match.end()]}: {code}{line[match.end() :]}"
    if code in _CODE.findall(codes.upper()):
        return line
    return f"{line[: match.end()]},{code}{line[match.end() :]}"
