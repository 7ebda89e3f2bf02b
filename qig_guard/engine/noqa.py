"""``# noqa`` suppressions, with flake8's syntax.

``# noqa: QIG001,QIG004`` on a finding's line suppresses those codes; a bare
``# noqa`` suppresses every code unless ``strict-noqa`` is on, in which case
it suppresses nothing and is itself reported. :func:`add_directives` writes
them for ``--add-noqa``.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable

from qig_guard.engine.findings import FILE_ERROR, Finding
from qig_guard.engine.parsing import split_lines

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
    for number, line in enumerate(split_lines(source), start=1):
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
                code=FILE_ERROR,
                message="bare `# noqa` (strict-noqa): name the codes, e.g. `# noqa: "
                f"{finding.code}`",
            )
        )
    return kept


def _with_codes(line: str, codes: set[str], comment: int | None) -> str:
    """``line`` (without its line break) suppressing ``codes``: merged into the
    ``# noqa`` of its comment (which starts at index ``comment``; None: it has
    none), else a ``# noqa: CODES`` comment appended. A directive that already
    names every code is left as it is."""
    match = _NOQA.search(line, comment) if comment is not None else None
    if match is None:
        return f"{line.rstrip()}  # noqa: {', '.join(sorted(codes))}"
    existing = [code.upper() for code in _CODE.findall(match.group("codes") or "")]
    if existing and codes <= set(existing):
        return line
    merged = existing + sorted(codes - set(existing))
    return f"{line[: match.start()]}# noqa: {', '.join(merged)}{line[match.end() :]}"


def add_directives(source: str, codes_by_line: dict[int, set[str]]) -> tuple[str, list[int]]:
    """``source`` with ``# noqa: CODE`` added to each line of ``codes_by_line``,
    merged into an existing ``# noqa`` or appended after an existing comment.

    A line that does not end its statement's line (inside a multi-line string,
    or continued with a backslash) cannot take a comment; those lines are
    returned, unchanged, as the second item.
    """
    comments: dict[int, int] = {}
    line_ends: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.start[1]
            elif token.type in (tokenize.NEWLINE, tokenize.NL):
                line_ends.add(token.start[0])
    except (tokenize.TokenError, SyntaxError):
        return source, sorted(codes_by_line)
    lines = source.splitlines(keepends=True)
    skipped = []
    for number, codes in sorted(codes_by_line.items()):
        if number not in line_ends or number > len(lines):
            skipped.append(number)
            continue
        line = lines[number - 1]
        body = line.rstrip("\r\n")
        lines[number - 1] = _with_codes(body, codes, comments.get(number)) + line[len(body) :]
    return "".join(lines), skipped


def add_code(line: str, code: str) -> str:
    """``line`` (without its line break) with ``code`` added to its ``# noqa`` directive,
    or with a ``# noqa: CODE`` comment appended when it has none (the editor's quick fix;
    the caller has checked that a comment fits the line)."""
    return _with_codes(line, {code}, line.find("#") if "#" in line else None)
