"""Text-level scanners for precise rule triggers (see ``Rule.could_match``).

They read source text without parsing it. Each over-approximates: what it cannot
follow (a call spanning a triple-quoted string, brackets nested deeper than four,
backslash continuations) is answered so that the trigger passes the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from qig_guard.facts.words import name_words

# A string literal on one line, any character but brackets, quotes, comments and backslashes, and
# bracketed groups nested up to four deep: what these cannot match is answered
# conservatively (the trigger passes the file).
_STRING = r"""(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""


def _balanced_pattern(atom: str, depth: int = 4) -> str:
    """A regex of ``atom``s, strings and bracketed groups nested up to ``depth`` deep."""
    inner = rf"(?:[^()\[\]{{}}'\"#\\]|{_STRING})"
    group = ""
    for _ in range(depth):
        group = rf"(?:\({inner}*\)|\[{inner}*\]|\{{{inner}*\}})"
        inner = rf"(?:[^()\[\]{{}}'\"#\\]|{_STRING}|{group})"
    return rf"(?:{atom}|{_STRING}|{group})*"


_ARGUMENTS = re.compile(_balanced_pattern(r"[^()\[\]{}'\"#\\]") + r"\)")
_REST_OF_LINE = re.compile(_balanced_pattern(r"[^()\[\]{}'\"#\\\n]"))
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


_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_OPENERS = {")": "(", "]": "[", "}": "{"}
_SPECIAL = re.compile(r"[()\[\]{}'\"#]")
_SPLIT_SPECIAL = re.compile(r"[()\[\]{}'\",]")
_SCAN_LIMIT = 4000  # characters scanned for one call's arguments or receiver
AS_NAME = re.compile(r"(?<![\w.])as[\s\\]+([A-Za-z_]\w*)")
"""``as NAME`` anywhere (imports, ``with``, ``except``): a superset of the import aliases."""


def arguments_text(source: str, open_index: int) -> str | None:
    """The text inside the bracket at ``open_index`` up to its closer (strings and
    comments skipped), or ``None`` when it is not closed within the scan limit."""
    stack = [_CLOSERS[source[open_index]]]
    index = open_index + 1
    end = min(len(source), open_index + _SCAN_LIMIT)
    while True:
        found = _SPECIAL.search(source, index, end)
        if found is None:
            return None
        index = found.start()
        char = source[index]
        if char in "'\"":
            quote = char * 3 if source.startswith(char * 3, index) else char
            close = source.find(quote, index + len(quote))
            while close > 0 and source[close - 1] == "\\" and len(quote) == 1:
                close = source.find(quote, close + 1)
            if close < 0:
                return None
            index = close + len(quote)
            continue
        if char == "#":
            index = source.find("\n", index)
            if index < 0:
                return None
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif char != stack.pop():
            return None
        elif not stack:
            return source[open_index + 1 : index]
        index += 1


def receiver_text(source: str, dot_index: int) -> str:
    """The postfix chain (``(a - b).detach()``, ``x``) ending just before ``dot_index``;
    brackets are matched naively, so a chain with brackets in strings comes out longer."""
    index = dot_index
    start = max(0, dot_index - _SCAN_LIMIT)
    while True:
        while index > start and source[index - 1] in " \t\\\n":
            index -= 1
        if index <= start:
            break
        char = source[index - 1]
        if char in _OPENERS:
            depth = 0
            while index > start:
                index -= 1
                if source[index] in _OPENERS:
                    depth += 1
                elif source[index] in _CLOSERS:
                    depth -= 1
                    if depth == 0:
                        break
            continue
        if char.isalnum() or char == "_":
            while index > start and (source[index - 1].isalnum() or source[index - 1] == "_"):
                index -= 1
            back = index
            while back > start and source[back - 1] in " \t\\\n":
                back -= 1
            if back > start and source[back - 1] == ".":
                index = back - 1
                continue
        break
    return source[index:dot_index]


def split_arguments(text: str) -> list[str]:
    """``text`` split at its top-level commas (brackets matched, strings skipped)."""
    parts: list[str] = []
    depth = 0
    start = 0
    quote = ""
    for found in _SPLIT_SPECIAL.finditer(text):
        char = found.group(0)
        if quote:
            if char == quote and text[found.start() - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in _CLOSERS:
            depth += 1
        elif char in _OPENERS:
            depth -= 1
        elif depth == 0:
            parts.append(text[start : found.start()])
            start = found.end()
    parts.append(text[start:])
    return parts


def import_aliases(source: str) -> Iterator[tuple[str, str]]:
    """``(imported, alias)`` for each ``... imported as alias`` (``imported`` is the last
    part of a dotted name); a superset: ``with open(p) as f`` gives ``("open", "f")``."""
    for match in AS_NAME.finditer(source):
        start = match.start()
        if not start or source[start - 1] not in " \t\\\n":
            continue
        yield word_before(source, start)[0], match.group(1)


def word_before(source: str, end: int) -> tuple[str, int]:
    """The identifier (or ``""``) ending at ``end``, spaces and line continuations
    before ``end`` skipped, and the index where it starts."""
    stop = end
    while stop and source[stop - 1] in " \t\\\n":
        stop -= 1
    start = stop
    while start and (source[start - 1].isalnum() or source[start - 1] == "_"):
        start -= 1
    return source[start:stop], start


@lru_cache(maxsize=64)
def first_literals(names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The first literal piece of each configured name, lower case (``consolidat`` for
    ``consolidat*``): every identifier the name matches holds it once lower-cased.
    ``None`` when a name has no literal piece (``*``): any text may match it."""
    found: dict[str, None] = {}
    for name in names:
        pieces = [
            piece for word in name_words(name) for piece in word.split("*") if piece.isalnum()
        ]
        if not pieces:
            return None
        found[pieces[0]] = None
    return tuple(found)
