"""Where sleep/consolidation code is, shared by QIG007 and QIG008.

Sleep code is any function or method whose own name, an enclosing function's
name or an enclosing class's name matches the configured ``sleep-functions``
(by words: ``consolidate_toward_basin``, ``SleepProtocol.run``, a closure
inside ``dream``).

Elastic Weight Consolidation is not sleep code: nothing in a chain that names
``ewc``, ``fisher``, ``importance``, ``penalty`` or ``regulari*``
(``class EWC``, ``consolidate_fisher``), nor a function that accumulates
squared gradients into a Fisher estimate (``p.grad ** 2``,
``p.grad.pow(2)``), even when it is called ``consolidate``.

The text helpers find the same places in source text, for the rules'
triggers: :func:`sleep_regions` over-approximates the spans of sleep code, and
:func:`enclosing_def` proves which function a position belongs to.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path, PurePath

import libcst as cst

from qig_guard.config import Config
from qig_guard.engine.resolve import ScopeTracker
from qig_guard.facts.words import matches_any, name_words

_NOT_SLEEP = ("ewc", "fisher", "importance", "penalty", "regulari*")


def _is_grad(node: cst.BaseExpression) -> bool:
    """Does the attribute/call chain ``node`` go through a ``.grad``?"""
    while True:
        if isinstance(node, cst.Attribute):
            if node.attr.value == "grad":
                return True
            node = node.value
        elif isinstance(node, cst.Call):
            node = node.func
        elif isinstance(node, cst.Name):
            return node.value == "grad"
        else:
            return False


def _is_two(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Integer) and node.value == "2"


class _SquaredGradient(cst.CSTVisitor):
    """Finds ``g.grad ** 2``, ``g.grad.pow(2)``, ``g.grad.square()``, ``g.grad * g.grad``."""

    def __init__(self) -> None:
        self.found = False

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> bool:
        if isinstance(node.operator, cst.Power) and _is_grad(node.left) and _is_two(node.right):
            self.found = True
        elif isinstance(node.operator, cst.Multiply) and _is_grad(node.left):
            module = cst.Module([])
            self.found |= module.code_for_node(node.left) == module.code_for_node(node.right)
        return not self.found

    def visit_Call(self, node: cst.Call) -> bool:
        func = node.func
        if isinstance(func, cst.Attribute) and _is_grad(func.value):
            square = func.attr.value == "square" and not node.args
            power = func.attr.value in ("pow", "pow_") and len(node.args) == 1
            if square or (power and _is_two(node.args[0].value)):
                self.found = True
        return not self.found


@lru_cache(maxsize=256)  # nodes hash by identity; a nested def asks again of its outers
def _estimates_fisher(function: cst.FunctionDef) -> bool:
    visitor = _SquaredGradient()
    function.body.visit(visitor)
    return visitor.found


@lru_cache(maxsize=1024)
def is_test_file(path: str, root: Path) -> bool:
    """A test module by pytest's and unittest's conventions: ``test_*.py``,
    ``*_test.py``, ``conftest.py``, or a module in a ``tests``/``test`` folder of the
    project (below ``root``; for a path outside it, among its last three folders)."""
    pure = PurePath(path)
    name = pure.name
    if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return True
    try:
        folders = pure.relative_to(root).parts[:-1] if pure.is_absolute() else pure.parts[:-1]
    except ValueError:
        folders = pure.parts[-4:-1]
    return any(folder in ("tests", "test") for folder in folders)


def _is_test(functions: Sequence[cst.FunctionDef], classes: Sequence[cst.ClassDef]) -> bool:
    """A test function (``test*``) or a method of a test class (``Test*``)."""
    return any(f.name.value.startswith("test") for f in functions) or any(
        c.name.value.startswith("Test") for c in classes
    )


def sleep_function(scopes: ScopeTracker, config: Config, path: str = "") -> cst.FunctionDef | None:
    """The innermost enclosing function when it is sleep code, else ``None``.

    Tests are not sleep code, whatever they are named: a ``test*`` function, a
    method of a ``Test*`` class, anything in a test file (``path``). They build
    random basins and drive models to check the sleep code they test.
    """
    functions = scopes.functions
    if not functions:
        return None
    names = config.sleep_functions
    chain = [node.name.value for node in functions] + [c.name.value for c in scopes.classes]
    if not any(matches_any(name, names) for name in chain):
        return None
    if any(matches_any(name, _NOT_SLEEP) for name in chain):
        return None
    if _is_test(functions, scopes.classes) or is_test_file(path, config.root):
        return None
    if any(_estimates_fisher(f) for f in functions):
        return None
    return functions[-1]


@lru_cache(maxsize=8)
def _spellings(names: tuple[str, ...]) -> tuple[str, ...]:
    """Texts one of which every identifier matching ``names`` contains.

    The longest literal part of each name's first word, as it appears in a
    ``snake_case``, ``CamelCase`` or ``UPPER_CASE`` identifier.
    """
    found: set[str] = set()
    for name in names:
        first = (name_words(name) or ("",))[0]
        part = max(re.split(r"[*?\[\]!]", first), key=len)
        if not part:
            return ("",)  # a name made of globs: every text may hold it
        found.add(part)
    parts = [p for p in found if not any(q != p and q in p for q in found)]
    return tuple(sorted({s for p in parts for s in (p, p.capitalize(), p.upper())}))


_HEADER = re.compile(r"[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)")


def _sleep_headers(source: str, names: tuple[str, ...]) -> list[tuple[int, int]]:
    """``(line start, indent)`` of each def or class whose name matches ``names``."""
    found = set()
    for spelling in _spellings(names):
        hit = source.find(spelling)
        while hit != -1:
            line = source.rfind("\n", 0, hit) + 1
            header = _HEADER.match(source, line)
            if (
                header is not None
                and header.start(1) <= hit < header.end(1)
                and matches_any(header.group(1), names)
            ):
                found.add((line, len(header.group(0)) - len(header.group(0).lstrip(" \t"))))
            hit = source.find(spelling, hit + 1)
    return sorted(found)


# --- text structure, for triggers ------------------------------------------------

_TOKENS = re.compile(
    r"#[^\n]*"
    r'|"""(?:[^"\\]|\\[\s\S]|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\[\s\S]|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\[\s\S])*"'
    r"|'(?:[^'\\\n]|\\[\s\S])*'"
)
_DEF = re.compile(r"([ \t]*)(?:async[ \t]+)?def\b")


@lru_cache(maxsize=64)
def _dedent_to(indent: int) -> re.Pattern[str]:
    """A line starting code at most ``indent`` columns in."""
    return re.compile(rf"\n[ \t]{{0,{indent}}}(?=[^\s#])")


class SourceText:
    """Lines, strings and blocks of one source text, computed lazily."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._triples: tuple[list[int], list[int]] | None = None
        self._regions: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        self._ends: dict[int, int] = {}

    def _triple_strings(self) -> tuple[list[int], list[int]]:
        """Spans of the triple-quoted strings (the only tokens spanning lines)."""
        if self._triples is not None:
            return self._triples
        source = self.source
        starts: list[int] = []
        ends: list[int] = []
        position = 0
        double, single = source.find('"""'), source.find("'''")
        while True:
            if -1 < double < position:
                double = source.find('"""', position)
            if -1 < single < position:
                single = source.find("'''", position)
            quote = min(double, single) if double > -1 and single > -1 else max(double, single)
            if quote == -1:
                break
            begin = max(position, source.rfind("\n", 0, quote) + 1)
            position = quote + 3  # inside a comment or a one-line string, unless found below
            for token in _TOKENS.finditer(source, begin):
                if token.end() > quote:
                    if token.start() == quote:
                        starts.append(quote)
                        ends.append(token.end())
                        position = token.end()
                    elif token.start() < quote:
                        position = max(position, token.end())
                    break
        self._triples = (starts, ends)
        return self._triples

    def in_string(self, position: int) -> bool:
        """Is ``position`` inside a string literal or a comment?"""
        source = self.source
        starts, ends = self._triple_strings()
        index = bisect.bisect_right(starts, position) - 1
        begin = source.rfind("\n", 0, position) + 1
        if index >= 0:
            if position < ends[index]:
                return True
            begin = max(begin, ends[index])
        end = source.find("\n", position)
        for token in _TOKENS.finditer(source, begin, len(source) if end == -1 else end):
            if token.start() > position:
                break
            if position < token.end():
                return True
        return False

    def words(
        self, word: str, after: re.Pattern[str], start: int, end: int, *, attribute: bool = False
    ) -> Iterator[int]:
        """Positions in ``[start, end)`` of ``word`` (not inside an identifier) where
        ``after`` matches; with ``attribute``, only after a dot (``x.word``)."""
        source = self.source
        hit = source.find(word, start, end)
        while hit != -1:
            before = hit - 1
            while attribute and before >= 0 and source[before] in " \t\n\\":
                before -= 1
            char = source[before] if before >= 0 else ""
            wanted = char == "." if attribute else not (char.isalnum() or char == "_")
            if wanted and after.match(source, hit):
                yield hit
            hit = source.find(word, hit + 1, end)

    def line_start(self, position: int) -> int:
        return self.source.rfind("\n", 0, position) + 1

    def block_end(self, header: int, indent: int) -> int:
        """Where the block whose header line starts at ``header`` ends.

        The first later line that starts code at ``indent`` columns or fewer,
        outside brackets opened since the header and outside strings.
        """
        if header in self._ends:
            return self._ends[header]
        self._ends[header] = end = self._block_end(header, indent)
        return end

    def _block_end(self, header: int, indent: int) -> int:
        source = self.source
        pattern = _dedent_to(indent)
        position = source.find("\n", header)
        while position != -1:
            match = pattern.search(source, position)
            if match is None:
                return len(source)
            line = match.start() + 1
            opened = sum(source.count(c, header, line) for c in "([{")
            closed = sum(source.count(c, header, line) for c in ")]}")
            if opened <= closed and not self.in_string(line):
                return line
            position = source.find("\n", line)
        return len(source)

    def _decorated_start(self, line: int, indent: int) -> int:
        """The start of the decorators above the header line at ``line``.

        Walks up to each ``@`` above while no other code starts at ``indent``
        columns or fewer in between (an ``@`` deeper in is taken too: an
        over-approximation)."""
        source = self.source
        pattern = _dedent_to(indent)
        start = line
        at = source.rfind("@", 0, start)
        while at != -1:
            above = source.rfind("\n", 0, at) + 1
            codes = pattern.finditer(source, max(0, above - 1), start - 1)
            if any(source[code.end()] != "@" for code in codes):
                break
            start = above
            at = source.rfind("@", 0, start)
        return start

    def regions(self, names: tuple[str, ...]) -> list[tuple[int, int]]:
        """Spans (decorators to block end) of the defs and classes named like ``names``."""
        if names in self._regions:
            return self._regions[names]
        found: list[tuple[int, int]] = []
        self._regions[names] = found
        for line, indent in _sleep_headers(self.source, names):
            if found and line < found[-1][1]:
                continue  # nested in a sleep block already
            start = self._decorated_start(line, indent)
            found.append((start, self.block_end(line, indent)))
        return found

    def enclosing_def(self, position: int) -> int | None:
        """The start of the innermost ``def`` line enclosing ``position``, when provable.

        ``None`` when the nearest ``def`` line above does not provably enclose it.
        """
        source = self.source
        hit = source.rfind("def", 0, position)
        while hit != -1:
            line = source.rfind("\n", 0, hit) + 1
            header = _DEF.match(source, line)
            if header is not None and header.end() == hit + 3:
                if line == self.line_start(position) or self.in_string(hit):
                    return None
                end = self.block_end(line, len(header.group(1)))
                return line if position < end else None
            hit = source.rfind("def", 0, hit)
        return None


@lru_cache(maxsize=4)
def source_text(source: str) -> SourceText:
    """The (cached) :class:`SourceText` of ``source``, shared by the triggers."""
    return SourceText(source)


def in_sleep_regions(text: SourceText, words: tuple[str, ...], config: Config) -> bool:
    """Does one of ``words`` occur (as text, anywhere) inside sleep code?"""
    find = text.source.find
    return any(
        find(word, start, end) != -1
        for start, end in text.regions(config.sleep_functions)
        for word in words
    )
