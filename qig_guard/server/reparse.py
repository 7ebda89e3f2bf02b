"""Parsing an edited buffer again without parsing what did not change.

An edit touches one top-level statement; the others keep their text. The
buffer is cut into top-level statements (with the comments and blank lines
before them) by ``ast``, which is an order of magnitude faster than libcst,
each piece is parsed by libcst unless the last parse had the same text, and
the pieces are joined into one module whose code is the buffer's text.

The joined module's code is the buffer's text (checked for every new piece),
so positions are the same as a whole parse's. It can differ from a whole
parse only in trivia: comment lines after a block's last statement belong to
the next statement instead of the block's footer. Rules never read trivia,
so findings are the same (a test compares them). Whenever the pieces could
disagree (a syntax error, a lone carriage return, a piece whose code under the
module's indent or line break is not its text) the buffer is parsed whole.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Sequence

import libcst as cst

_LINE_END = re.compile(r"\r\n|\n")
Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement
DEFAULT_INDENT = " " * 4  # what libcst assumes for a module without an indented block


def _line_starts(source: str) -> list[int]:
    """Offset of the start of each line (1-based line n starts at ``starts[n - 1]``)."""
    return [0, *(match.end() for match in _LINE_END.finditer(source))]


def _pieces(source: str) -> list[str] | None:
    """The buffer cut after each top-level statement's last line (None: parse it whole)."""
    if "\r" in source.replace("\r\n", ""):
        return None
    try:
        statements = ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    ends: list[int] = []
    for statement in statements:
        if ends and statement.lineno <= ends[-1]:  # `a = 1; b = 2` shares a line
            ends[-1] = max(ends[-1], statement.end_lineno or statement.lineno)
        else:
            ends.append(statement.end_lineno or statement.lineno)
    starts = _line_starts(source)
    offsets = [starts[end] if end < len(starts) else len(source) for end in ends[:-1]]
    bounds = [0, *offsets, len(source)]
    return [source[start:end] for start, end in itertools.pairwise(bounds)]


class Reparser:
    """``parse(source)``: the module of ``source``, reusing the previous call's pieces."""

    def __init__(self) -> None:
        self._known: dict[str, cst.Module] = {}
        self._exact: dict[tuple[str, str, str], bool] = {}
        self._moved: dict[cst.Module, list[Statement]] = {}
        self._next_moved: dict[cst.Module, list[Statement]] = {}

    def __call__(self, source: str) -> cst.Module:
        pieces = _pieces(source)
        if pieces is None or len(pieces) < 2:
            self._known, self._exact = {}, {}
            return cst.parse_module(source)
        modules: list[cst.Module] = []
        used: set[int] = set()
        try:
            for piece in pieces:
                known = self._known.get(piece)
                if known is None or id(known) in used:
                    known = cst.parse_module(piece)  # a repeated piece needs its own nodes
                used.add(id(known))
                modules.append(known)
        except cst.ParserSyntaxError:
            self._known, self._exact = {}, {}
            return cst.parse_module(source)  # raises the whole file's error
        self._known = dict(zip(pieces, modules, strict=True))
        self._next_moved = {}
        joined = self._join(pieces, modules)
        self._moved = self._next_moved
        return joined if joined is not None else cst.parse_module(source)

    def _statements(self, module: cst.Module) -> Sequence[Statement]:
        """A piece's statements, its leading lines moved into the first (the same nodes
        for the same piece, so that work keyed on them carries over)."""
        known = self._moved.get(module)
        if known is None:
            known = list(module.body)
            if module.header:
                head = known[0]
                known[0] = head.with_changes(leading_lines=[*module.header, *head.leading_lines])
        self._next_moved[module] = known
        return known

    def _join(self, pieces: list[str], modules: list[cst.Module]) -> cst.Module | None:
        """One module of the pieces' statements, or None when some piece's code would
        not come out as its text under the joined module's indent and line break."""
        indents = [m.default_indent for m in modules if m.default_indent != DEFAULT_INDENT]
        indent = indents[0] if indents else DEFAULT_INDENT
        newline = modules[0].default_newline
        exact = {}
        for piece, module in zip(pieces, modules, strict=True):
            key = (piece, indent, newline)
            if key not in self._exact:
                same = module.with_changes(default_indent=indent, default_newline=newline)
                self._exact[key] = same.code == piece
            exact[key] = self._exact[key]
        self._exact = exact
        if not all(exact.values()):
            return None
        body: list[Statement] = []
        for index, module in enumerate(modules):
            if not module.body or (module.footer and index < len(modules) - 1):
                return None
            body.extend(module.body if index == 0 else self._statements(module))
        return modules[0].with_changes(
            body=body,
            footer=modules[-1].footer,
            default_indent=indent,
            default_newline=newline,
            has_trailing_newline=modules[-1].has_trailing_newline,
        )
