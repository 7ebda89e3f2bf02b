"""Text-level scanners for precise rule triggers (see ``Rule.could_match``).

They read source text without parsing it. Each over-approximates: what it cannot
follow (a call spanning a triple-quoted string, brackets nested deeper than four,
backslash continuations) is answered so that the trigger passes the file.
"""

from __future__ import annotations

import re

# A string literal on one line, any character but brackets, quotes, comments and backslashes, and
# bracketed groups nested up to four deep: what these cannot match is answered
# conservatively (the trigger passes the file).
_STRING = r"""(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""


def _balanced(atom: str, depth: int = 4) -> str:
    inner = rf"(?:[^()\[\]{{}}'\"#\\]|{_STRING})"
    group = ""
    for _ in range(depth):
        group = rf"(?:\({inner}*\)|\[{inner}*\]|\{{{inner}*\}})"
        inner = rf"(?:[^()\[\]{{}}'\"#\\]|{_STRING}|{group})"
    return rf"(?:{atom}|{_STRING}|{group})*"


_ARGUMENTS = re.compile(_balanced(r"[^()\[\]{}'\"#\\]") + r"\)")
_REST_OF_LINE = re.compile(_balanced(r"[^()\[\]{}'\"#\\\n]"))
string_literals = re.compile(_STRING)
_NAMES = re.compile(r"[A-Za-z_][\w.]*")


def call_arguments(source: str, start: int) -> str | None:
    """The argument text of the call whose ``(`` ends at ``start``; ``None`` when unsure."""
    found = _ARGUMENTS.match(source, start)
    if found is None or '"""' in found.group() or "'''" in found.group():
        return None
    return found.group()[:-1]


def rest_of_line(source: str, start: int) -> str | None:
    """The expression text from ``start`` to the end of its logical line; ``None`` when unsure."""
    found = _REST_OF_LINE.match(source, start)
    end = found.end() if found is not None else start
    text = source[start:end]
    if (end < len(source) and source[end] not in "\n#)]}") or '"""' in text or "'''" in text:
        return None
    return text


def bare_names(text: str) -> set[str]:
    """Identifiers in ``text`` outside strings that are not attributes (``sd``, ``m``
    in ``f(sd, m.x)``)."""
    return {name.split(".", 1)[0] for name in _NAMES.findall(string_literals.sub('""', text))}


_EQUALS = re.compile(r"=(?!=)")


def flows_from(source: str, names: set[str], origin: re.Pattern[str]) -> bool:
    """Whether any of ``names`` may be assigned, directly or through other names, text
    that ``origin`` finds. Over-approximated: a name is assigned what follows every ``=``
    (not ``==``, ``+=``...) that has the name before it on its line (``a, b = ...``,
    ``x: T = ...``, keyword arguments); scopes and order are ignored."""
    lines = [
        (source[source.rfind("\n", 0, equals.start()) + 1 : equals.start()], equals.end())
        for equals in _EQUALS.finditer(source)
        if source[equals.start() - 1] not in "=!<>+-*/%&|^@:"
    ]
    assigned = set(re.findall(r"\w+", "\n".join(before for before, _ in lines)))
    pending, seen = list(names & assigned), set(names)
    while pending:
        name = pending.pop()
        word = re.compile(rf"\b{re.escape(name)}\b")
        for before, start in lines:
            if name not in before or not word.search(before):
                continue
            value = rest_of_line(source, start)
            if value is None or origin.search(value):
                return True
            new = bare_names(value) - seen
            seen |= new
            pending.extend(new & assigned)
    return False
