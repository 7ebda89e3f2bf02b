"""Parsing a file with libcst within the parser's limits.

libcst's native parser takes quadratic or worse time on deep nesting and
crashes the process (a stack overflow) somewhere past 1,000 levels. So CPython's
own parser (``ast``) reads the file first: what CPython rejects as too deep,
and what nests deeper than :data:`MAX_DEPTH`, is refused with a precise
reason instead of being handed to libcst. The same pass rewrites the one valid
form libcst rejects, a parenthesized annotated target (``(x): int = 1``).
Code that libcst parses but that nests deeply (a 3,000-term sum) is checked
on a thread with a large stack and a high recursion limit, because libcst's
own metadata and code generation recurse per node.
"""

from __future__ import annotations

import ast
import itertools
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    import libcst as cst

# libcst parses 1,000 nested levels in about a second (2,000 attributes: 4 s,
# 1,000 nested lists: 6 s, growing quadratically); CPython itself stops at 200
# nested brackets.
MAX_DEPTH = 1000
DEEP_STACK_BYTES = 512 * 1024 * 1024
DEEP_RECURSION_LIMIT = 200_000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# CPython's messages for nesting it refuses; any other SyntaxError may be
# newer grammar than this interpreter knows, so libcst still gets to try.
_NESTING_MESSAGES = ("too many nested parentheses", "too complex", "too many statically nested")

Result = TypeVar("Result")


class ParseRefused(Exception):
    """The file is not handed to libcst; the message says why, for QIG000."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass
class Parsed:
    module: cst.Module
    # True when the text libcst parsed differs from the file (see rewrite_annotated_targets):
    # positions stay on the same lines but fixes must not be offered.
    rewritten: bool
    # CPython's ``ast`` of the same text, when CPython parses it (see positions).
    tree: ast.Module | None = None


def line_starts(source: str) -> list[int]:
    """Offsets of each line's start, splitting only on ``\\n``, ``\\r\\n`` and ``\\r``
    as Python's tokenizer does (``str.splitlines`` also splits on form feed and more)."""
    return [0, *(match.end() for match in _LINE_BREAK.finditer(source))]


def split_lines(source: str) -> list[str]:
    """Lines of ``source`` with their line breaks, split as :func:`line_starts` does."""
    lines = source.splitlines(keepends=True)
    # ``str.splitlines`` splits at every break the tokenizer splits at, and at others
    # too; with no more lines than the tokenizer's breaks make, it split at no other.
    breaks = source.count("\n") + source.count("\r") - source.count("\r\n")
    if len(lines) == breaks + (not source.endswith(("\n", "\r")) and bool(source)):
        return lines
    starts = line_starts(source)
    lines = [source[start:end] for start, end in itertools.pairwise(starts)]
    if starts[-1] < len(source):
        lines.append(source[starts[-1] :])
    return lines


@dataclass
class Shape:
    """What :func:`scan` finds: the deepest node and the annotated assignments
    that are not simple names (where a parenthesized target may hide)."""

    depth: int
    deepest: ast.AST
    annotated: list[ast.AnnAssign]


# Statements that hold statements: entered whatever their length (see scan).
_COMPOUND = frozenset(
    {
        ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For,
        ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.ExceptHandler,
        *(getattr(ast, name) for name in ("TryStar", "Match", "match_case") if hasattr(ast, name)),
    }
)  # fmt: skip


def scan(tree: ast.AST, line_bytes: int | None = None) -> Shape:
    """One pass over ``tree`` without recursion (a hot loop: fields read directly).

    Given ``line_bytes``, the longest line's length in UTF-8 bytes, an expression or
    simple statement too short to take the tree past :data:`MAX_DEPTH` is not entered:
    each level of nesting costs at least one character of source, and at most one
    more level without one (``Load``, a keyword, ``arguments``). The depth is then
    exact whenever it exceeds :data:`MAX_DEPTH`, and a lower bound otherwise."""
    deepest, where = 0, tree
    annotated: list[ast.AnnAssign] = []
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    pop, push, node_type = stack.pop, stack.append, ast.AST
    compound = _COMPOUND
    while stack:
        node, depth = pop()
        if depth > deepest:
            deepest, where = depth, node
        if type(node) is ast.AnnAssign and not node.simple:
            annotated.append(node)
        if line_bytes is not None and type(node) not in compound:
            end = getattr(node, "end_lineno", None)
            if end is not None:
                line = node.lineno  # type: ignore[attr-defined]
                if line == end:
                    span = node.end_col_offset - node.col_offset  # type: ignore[attr-defined]
                else:
                    span = (end - line + 1) * line_bytes
                if depth + 2 * span + 2 <= MAX_DEPTH:
                    continue
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, node_type):
                        push((item, depth + 1))
            elif isinstance(value, node_type):
                push((value, depth + 1))
    return Shape(deepest, where, annotated)


def _column(lines: list[str], line: int, byte_offset: int) -> int:
    """The 0-based character column of an ``ast`` UTF-8 byte offset."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def rewrite_annotated_targets(source: str, annotated: list[ast.AnnAssign]) -> str:
    """``(x): int = 1`` as ``x  : int = 1`` (same length, same lines): libcst rejects
    a parenthesized annotated target that CPython accepts. ``annotated`` are the
    candidates (:func:`scan`); multi-line ones are left as they are."""
    if not annotated:
        return source
    lines = split_lines(source)
    starts = line_starts(source)
    edits: list[tuple[int, int, str]] = []
    for node in annotated:
        if node.lineno != node.target.end_lineno:
            continue
        target = node.target
        if node.lineno != target.lineno:
            continue
        begin = starts[node.lineno - 1]
        start = begin + _column(lines, node.lineno, node.col_offset)
        target_start = begin + _column(lines, target.lineno, target.col_offset)
        target_end = begin + _column(lines, target.lineno, target.end_col_offset or 0)
        colon = target_end
        while colon < len(source) and source[colon] in ") \t":
            colon += 1
        before = source[start:target_start]
        if "(" not in before or before.strip("( \t") or colon >= len(source):
            continue
        if source[colon] != ":":
            continue
        text = source[target_start:target_end]
        edits.append((start, colon, text + " " * (colon - start - len(text))))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source


def parse(
    source: str,
    parse_module: Callable[[str], cst.Module] | None = None,
    tree: ast.Module | None = None,
) -> Parsed:
    """Parse ``source`` with libcst (or ``parse_module``), or raise ParseRefused (or
    libcst's own error); ``tree``, when given, is CPython's ``ast`` of ``source``."""
    import libcst as cst

    parse_module = parse_module or cst.parse_module

    try:
        if tree is None:
            tree = ast.parse(source)
    except SyntaxError as error:
        if any(text in str(error.msg) for text in _NESTING_MESSAGES):
            raise ParseRefused(
                f"syntax error, not checked: {error.msg}", error.lineno or 1, error.offset or 1
            ) from None
        return Parsed(parse_module(source), rewritten=False)
    except (RecursionError, MemoryError) as error:
        raise ParseRefused(
            f"nests too deeply for CPython's own parser ({type(error).__name__}); not checked"
        ) from None
    except ValueError as error:  # null bytes on Python < 3.12
        raise ParseRefused(f"cannot parse, not checked: {error}") from None
    longest = max(map(len, split_lines(source)), default=0)
    shape = scan(tree, longest if source.isascii() else 4 * longest)
    if shape.depth > MAX_DEPTH:
        raise ParseRefused(
            f"nests {shape.depth} levels deep, over the parser limit of {MAX_DEPTH} "
            "(libcst's parser takes quadratic time and crashes on deeper code); not checked",
            getattr(shape.deepest, "lineno", 1),
        )
    rewritten = rewrite_annotated_targets(source, shape.annotated)
    with unvalidated_nodes():
        module = parse_module(rewritten)
    return Parsed(module, rewritten=rewritten != source, tree=tree)


_VALIDATION = threading.Lock()


@contextmanager
def unvalidated_nodes() -> Iterator[None]:
    """Skip libcst's per-node validation while the parser builds a tree (about 15% of
    a parse): the parser's nodes are valid by construction, and libcst's own comment on
    ``CSTNode.__post_init__`` suggests as much. Nodes built elsewhere meanwhile (a rule's
    replacement) are checked when the fixer parses its output again."""
    from libcst._nodes.base import CSTNode

    with _VALIDATION:
        original = CSTNode.__dict__.get("__post_init__")
        if original is None:  # a libcst without it: nothing to skip
            yield
            return
        CSTNode.__post_init__ = _skip  # type: ignore[method-assign]
        try:
            yield
        finally:
            CSTNode.__post_init__ = original  # type: ignore[method-assign]


def _skip(self: object) -> None:
    return None


def with_deep_stack(function: Callable[[], Result]) -> Result:
    """Call ``function`` on a thread with a large stack and a high recursion limit,
    so libcst's per-node recursion copes with deeply nested (valid) code.

    A worker process keeps one such thread for all its files (see
    :func:`keep_deep_stack_thread`); elsewhere each call starts its own, so that a
    process that forks later has no thread of ours. A call made on the kept thread runs
    at once (queued, it would wait for itself)."""
    if threading.current_thread().name == _KEPT_THREAD:
        return function()
    outcome: list[tuple[bool, Any]] = []
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, DEEP_RECURSION_LIMIT))
    try:
        if _kept is not None:
            done = threading.Event()
            _kept.put((function, outcome, done))
            done.wait()
        else:
            thread = _deep_stack_thread(lambda: _call(function, outcome), "qig-guard-check")
            thread.start()
            thread.join()
    finally:
        sys.setrecursionlimit(old_limit)
    succeeded, value = outcome[0]
    if not succeeded:
        raise value  # on the caller's thread
    return cast("Result", value)


def keep_deep_stack_thread() -> None:
    """Serve :func:`with_deep_stack` from one thread for the rest of this process (a
    worker, which never forks): starting a thread with a 512 MiB stack for each file
    cost more than a small file's check."""
    global _kept
    if _kept is None:
        calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        _deep_stack_thread(partial(_serve, calls), _KEPT_THREAD).start()
        _kept = calls


_Call = tuple[Callable[[], Any], list[tuple[bool, Any]], threading.Event]
_KEPT_THREAD = "qig-guard-deep-stack"
_kept: queue.SimpleQueue[_Call] | None = None


def _deep_stack_thread(target: Callable[[], object], name: str) -> threading.Thread:
    old_stack = threading.stack_size()
    threading.stack_size(DEEP_STACK_BYTES)
    try:
        return threading.Thread(target=target, name=name, daemon=True)
    finally:
        threading.stack_size(old_stack)


def _call(function: Callable[[], Any], outcome: list[tuple[bool, Any]]) -> None:
    try:
        outcome.append((True, function()))
    except BaseException as error:  # handed to the caller
        outcome.append((False, error))


def _serve(calls: queue.SimpleQueue[_Call]) -> None:
    while True:
        function, outcome, done = calls.get()
        _call(function, outcome)
        done.set()
