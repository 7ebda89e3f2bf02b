"""Source ranges of nodes, tracked only inside the top-level statements that need them.

libcst's ``PositionProvider`` regenerates the whole module with position
tracking, which costs more than parsing it, while a file's findings usually
sit in a few of its top-level statements. Here each statement's first line
comes from plain code generation (cheap), and positions are tracked only
within a statement that holds a node asked about; inside a class, only within
the method that holds it, whose first line CPython's ``ast`` of the same text
gives. The ranges are exactly ``PositionProvider``'s (a test compares them node
by node).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import ClassVar, cast

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import NEWLINE_RE, PositionProvidingCodegenState

from qig_guard.engine.slicing import DEFINITIONS, first_line
from qig_guard.engine.traversal import children


def _lines(code: str) -> int:
    return len(NEWLINE_RE.findall(code))


def _contains(root: cst.CSTNode, target: cst.CSTNode) -> bool:
    """Whether ``target`` is ``root`` or below it (trivia nodes are not searched)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node is target:
            return True
        stack.extend(children(node))
    return False


class SourceOrder:
    """``order(node, root)``: ``(first, last)``, the pre-order indices within ``root``
    of ``node`` and of the last node below it, so that comparing them answers "before"
    and "inside" in source order without generating any code (one walk per root, on
    first use: a function rather than the whole module, where that is enough)."""

    def __init__(self) -> None:
        self._spans: dict[int, dict[int, tuple[int, int]]] = {}

    def __call__(self, node: cst.CSTNode, root: cst.CSTNode) -> tuple[int, int]:
        spans = self._spans.get(id(root))
        if spans is None:
            spans = self._spans[id(root)] = _walk(root)
        return spans[id(node)]


def _walk(root: cst.CSTNode) -> dict[int, tuple[int, int]]:
    spans: dict[int, tuple[int, int]] = {}
    firsts: dict[int, int] = {}
    counter = 0
    stack: list[tuple[cst.CSTNode, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            spans[id(node)] = (firsts[id(node)], counter - 1)
            continue
        firsts[id(node)] = counter
        counter += 1
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children(node)))
    return spans


class StatementPositions:
    """``positions(node)``: the node's :class:`CodeRange` in ``module``.

    The line counts of the last module's statements are kept: a language server
    that reuses unchanged statement nodes in its next parse counts only the new ones.
    """

    _counted: ClassVar[dict[cst.BaseStatement, int]] = {}

    def __init__(self, module: cst.Module, tree: ast.Module | None = None) -> None:
        self.module = module
        self.tree = tree  # ``ast`` of the same text: the first lines of class members
        self._members: dict[int, Mapping[cst.CSTNode, CodeRange]] = {}
        self._starts: list[int] | None = None
        self._statements: dict[int, Mapping[cst.CSTNode, CodeRange]] = {}
        self._last = 0  # findings come in source order: search on from the last hit
        self._whole: Mapping[cst.CSTNode, CodeRange] | None = None

    def _first_lines(self) -> list[int]:
        """The first line of each top-level statement (its leading comments included)."""
        if self._starts is None:
            self._starts = self._first_lines_from_tree() or self._counted_first_lines()
        return self._starts

    def _first_lines_from_tree(self) -> list[int] | None:
        """:meth:`_first_lines` from the ``ast``: where each statement's code starts, less
        the lines of the comments and blank lines before it that libcst gives it. No code
        is generated but those lines. ``None`` without an ``ast`` or where its statements
        do not pair with libcst's (``a = 1; b = 2`` is one line of two statements)."""
        if self.tree is None:
            return None
        starts: list[int] = []
        end = 0
        for node in self.tree.body:
            line = first_line(node)
            if line > end:
                starts.append(line)
            end = max(end, node.end_lineno or node.lineno)
        body = self.module.body
        if len(starts) != len(body):
            return None
        code_for = self.module.code_for_node
        return [
            start - sum(_lines(code_for(empty)) for empty in statement.leading_lines)
            for start, statement in zip(starts, body, strict=True)
        ]

    def _counted_first_lines(self) -> list[int]:
        """:meth:`_first_lines` by generating each statement's code and counting lines."""
        module = self.module
        line = 1 + sum(_lines(module.code_for_node(empty)) for empty in module.header)
        starts = []
        previous = StatementPositions._counted
        counted: dict[cst.BaseStatement, int] = {}
        for statement in module.body:
            starts.append(line)
            count = previous.get(statement)
            if count is None:
                count = _lines(module.code_for_node(statement))
            counted[statement] = count
            line += count
        StatementPositions._counted = counted
        return starts

    def _statement(self, node: cst.CSTNode) -> int | None:
        body = self.module.body
        for offset in range(len(body)):
            index = (self._last + offset) % len(body)
            if _contains(body[index], node):
                self._last = index
                return index
        return None

    def _in_statement(self, index: int) -> Mapping[cst.CSTNode, CodeRange]:
        known = self._statements.get(index)
        if known is None:
            alone = self.module.with_changes(body=[self.module.body[index]], header=[], footer=[])
            known = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)
            self._statements[index] = known
        return known

    def _in_member(self, index: int, node: cst.CSTNode) -> Mapping[cst.CSTNode, CodeRange] | None:
        """Positions in the method (or nested class) of top-level class ``index`` that
        holds ``node``, tracked from the member's first line in the ``ast``; ``None``
        when ``node`` is in no member or the ``ast`` is not there."""
        statement = self.module.body[index]
        if self.tree is None or not isinstance(statement, cst.ClassDef):
            return None
        body = statement.body
        if not isinstance(body, cst.IndentedBlock):
            return None
        members = [m for m in body.body if isinstance(m, (cst.FunctionDef, cst.ClassDef))]
        found = next((m for m in members if _contains(m, node)), None)
        if found is None:
            return None
        known = self._members.get(id(found))
        if known is not None:
            return known
        position = members.index(found)
        classes = [n for n in self.tree.body if isinstance(n, ast.ClassDef)]
        top = [s for s in self.module.body if isinstance(s, cst.ClassDef)].index(statement)
        ast_members = [m for m in classes[top].body if isinstance(m, DEFINITIONS)]
        first = ast_members[position]
        line = first_line(first)
        provider = PositionProvider()
        state = PositionProvidingCodegenState(
            default_indent=self.module.default_indent,
            default_newline=self.module.default_newline,
            provider=provider,
            indent_tokens=[body.indent if body.indent is not None else self.module.default_indent],
            line=line - sum(_lines(self.module.code_for_node(e)) for e in found.leading_lines),
        )
        found._codegen(state)
        ranges = cast("dict[cst.CSTNode, CodeRange]", dict(provider._computed))
        self._members[id(found)] = ranges
        return ranges

    def __call__(self, node: cst.CSTNode) -> CodeRange:
        index = self._statement(node)
        if index is None:  # the module, its header or footer, or trivia
            if self._whole is None:
                wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
                self._whole = wrapper.resolve(PositionProvider)
            return self._whole[node]
        if index not in self._statements:
            member = self._in_member(index, node)
            if member is not None:
                return member[node]
        found = self._in_statement(index)[node]
        shift = self._first_lines()[index] - 1
        if not shift:
            return found
        return CodeRange(
            CodePosition(found.start.line + shift, found.start.column),
            CodePosition(found.end.line + shift, found.end.column),
        )
