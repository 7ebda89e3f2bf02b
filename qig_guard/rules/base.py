"""The rule base class, its documentation contract and the per-file context.

A rule is a :class:`libcst.BatchableCSTVisitor` subclass living in its own
module ``qig_guard/rules/qigNNN_<name>.py``. All selected rules for a file
run in one traversal, after the :class:`~qig_guard.engine.resolve.ScopeTracker`, so
``self.context.qualified_name(node)`` answers for the node being visited.

Every rule documents itself in its docstring with the sections
``What it does``, ``Why is this bad``, ``Example``, ``Use instead`` and, when
it offers a fix, ``Fix safety``; and carries ``VALID``/``INVALID`` snippets
that the test suite runs (and ``qig-guard explain`` prints).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import ClassVar, Literal

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper

from qig_guard.config import Config
from qig_guard.engine.findings import Edit, Finding, Fix
from qig_guard.engine.positions import SourceOrder, StatementPositions
from qig_guard.engine.resolve import ScopeTracker
from qig_guard.engine.traversal import VisitorFunction, visitor_names
from qig_guard.facts.project import EMPTY, ProjectFacts
from qig_guard.rules.gates import Always, Gate


@dataclass(frozen=True)
class Invalid:
    """A snippet the rule must flag; ``fixed`` is the source after its fix.

    ``line`` and ``column`` (1-based, as findings report them) pin where the rule
    must flag it: the examples test then asserts a finding starts there.
    """

    code: str
    fixed: str | None = None
    unsafe: bool = False
    line: int | None = None
    column: int | None = None


class FileContext:
    """What a rule may know about the file being checked."""

    def __init__(
        self,
        path: str,
        source: str,
        wrapper: MetadataWrapper,
        config: Config,
        scopes: ScopeTracker,
        project: ProjectFacts = EMPTY,
        tree: ast.Module | None = None,
    ) -> None:
        self.path = path
        self.tree = tree  # CPython's ``ast`` of the parsed text, when it has one
        self.project = project
        self.source = source
        self.wrapper = wrapper
        self.config = config
        self.scopes = scopes
        self.findings: list[Finding] = []
        # Other files the rules read (a constant's module): a result depends on them too.
        self.read_files: set[str] = set()
        self._positions: Callable[[cst.CSTNode], CodeRange] | None = None
        self._order: SourceOrder | None = None

    @property
    def module(self) -> cst.Module:
        return self.wrapper.module

    def reads(self, file: Path) -> None:
        """Note that a rule's result depends on ``file`` (see ``FileResult.read_files``)."""
        self.read_files.add(str(file))

    def order(self, node: cst.CSTNode, root: cst.CSTNode | None = None) -> tuple[int, int]:
        """``(first, last)`` pre-order indices of ``node`` and of its last descendant
        within ``root`` (default: the module): a cheap stand-in for positions when only
        "before" or "inside" matters."""
        if self._order is None:
            self._order = SourceOrder()
        if root is not None:
            try:
                return self._order(node, root)
            except KeyError:  # not below ``root`` after all: order it in the module
                pass
        return self._order(node, self.module)

    def position(self, node: cst.CSTNode) -> CodeRange:
        """The node's source range (tracked only in the top-level statements asked about)."""
        if self._positions is None:
            self._positions = StatementPositions(self.module, self.tree)
        return self._positions(node)

    def qualified_name(self, node: cst.CSTNode) -> str | None:
        """``torch.save`` for ``s`` after ``from torch import save as s``; see resolve."""
        return self.scopes.qualified_name(node)

    def code_for(self, node: cst.CSTNode, indent: str = "") -> str:
        """The node's source; ``indent`` is the enclosing block's indentation, which its
        continuation lines carry in the file (``code_for_node`` renders it as none)."""
        from libcst._nodes.internal import CodegenState

        state = CodegenState(
            default_indent=self.module.default_indent,
            default_newline=self.module.default_newline,
            indent_tokens=[indent] if indent else [],
        )
        node._codegen(state)
        return "".join(state.tokens)

    def block_indent(self, node: cst.CSTNode, span: CodeRange) -> str:
        """The indentation the file's text gives ``node``'s continuation lines beyond what
        it renders alone: the enclosing block's, for lines that follow the block."""
        rendered = self.code_for(node).split("\n")
        if len(rendered) < 2:
            return ""
        lines = self.source.split("\n")[span.start.line : span.end.line]
        for text, alone in zip(lines, rendered[1:], strict=False):
            if text != alone and alone and text.endswith(alone):
                return text[: len(text) - len(alone)]
        return ""


class Rule(cst.BatchableCSTVisitor):
    """Base class of all rules; see the module docstring for the contract."""

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    VALID: ClassVar[Sequence[str]] = ()
    INVALID: ClassVar[Sequence[Invalid]] = ()
    # What must hold in a unit of code for the rule to report there (see gates): the
    # engine parses only the units some selected rule's gate holds in. It must never
    # reject a unit the rule would report in (the trigger-agreement tests prove it).
    gate: ClassVar[Gate] = Always()
    # What the rule reads besides a unit its gate selects: "unit", its class's header and
    # own statements; "file", the whole file.
    reads: ClassVar[Literal["unit", "file"]] = "unit"
    # The rule also reads the functions a selected unit calls (by name: a module function,
    # or a method of its class called on ``self``) where this gate holds in them.
    callees: ClassVar[Gate | None] = None
    # For the gate, a unit that calls such a callee uses these identifiers too.
    callees_stand_for: ClassVar[frozenset[str]] = frozenset()
    # Where this gate holds of the name a unit defines (``pair_distance``), the rule also
    # reads the units that call it, and its ``gate`` sees their identifiers too (a
    # helper's values come from its callers).
    callers: ClassVar[Gate | None] = None
    # A new rule starts in preview: outside ``ALL`` and prefixes until it has
    # passed the upstream ecosystem check (see CONTRIBUTING.md).
    preview: ClassVar[bool] = False

    def __init__(self, context: FileContext) -> None:
        super().__init__()
        self.context = context
        self.config = context.config
        self.error: Exception | None = None
        self.seconds = 0.0  # time in this rule's visitors, under ``config.time_rules``

    def get_visitors(self) -> Mapping[str, VisitorFunction]:
        """The batched visitor functions, each guarded so that a crash disables
        only this rule on this file (the engine reports it) and keeps the rest;
        timed as well only when the configuration asks (``--statistics``)."""
        guard = self._timed_guard if self.config.time_rules else self._guard
        return {name: guard(getattr(self, name)) for name in visitor_names(type(self))}

    def _timed_guard(self, function: VisitorFunction) -> VisitorFunction:
        guarded = self._guard(function)

        def timed(node: cst.CSTNode) -> None:
            start = perf_counter()
            guarded(node)
            self.seconds += perf_counter() - start

        return timed

    def _guard(self, function: VisitorFunction) -> VisitorFunction:
        def guarded(node: cst.CSTNode) -> None:
            if self.error is not None:
                return
            try:
                function(node)
            except Exception as error:  # reported by the engine
                self.error = error

        return guarded

    @classmethod
    def documentation(cls) -> str:
        """The docstring, dedented."""
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        replacement: cst.CSTNode | None = None,
        fix_description: str = "",
        safe: bool = True,
    ) -> None:
        """Record a finding at ``node``; ``replacement`` offers a fix replacing it."""
        span = self.context.position(node)
        fix = None
        if replacement is not None:
            indent = self.context.block_indent(node, span)
            edit = Edit(
                span.start.line,
                span.start.column + 1,
                span.end.line,
                span.end.column + 1,
                self.context.code_for(replacement, indent),
            )
            fix = Fix(fix_description or f"Replace with `{edit.content}`", (edit,), safe)
        self.context.findings.append(
            Finding(
                path=self.context.path,
                line=span.start.line,
                column=span.start.column + 1,
                end_line=span.end.line,
                end_column=span.end.column + 1,
                code=self.code,
                message=message,
                fix=fix,
            )
        )


def positional_args(call: cst.Call) -> list[cst.BaseExpression]:
    """The call's plain positional arguments up to the first ``*args`` (after it,
    positions are unknown)."""
    positional = []
    for arg in call.args:
        if arg.star:
            break
        if arg.keyword is None:
            positional.append(arg.value)
    return positional


def keyword_arg(call: cst.Call, name: str) -> cst.BaseExpression | None:
    """The value passed as ``name=...``, if any."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def number_value(node: cst.BaseExpression | None) -> float | None:
    """The value of an int or float literal; ``inf`` for an int too large for a float
    (``10**400`` written out, or more digits than Python converts)."""
    if not isinstance(node, (cst.Integer, cst.Float)):
        return None
    try:
        return float(node.evaluated_value)
    except (OverflowError, ValueError, SyntaxError):  # SyntaxError: over 4,300 digits
        return math.inf


def argument(call: cst.Call, index: int, *keywords: str) -> cst.BaseExpression | None:
    """The argument at position ``index``, or passed by one of ``keywords``."""
    positional = positional_args(call)
    if index < len(positional):
        return positional[index]
    return next((v for k in keywords if (v := keyword_arg(call, k)) is not None), None)


__all__ = [
    "FileContext",
    "Invalid",
    "Rule",
    "argument",
    "keyword_arg",
    "positional_args",
]
