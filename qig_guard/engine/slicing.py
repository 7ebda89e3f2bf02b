"""Units of a module, and the module cut down to the units some rule's gate selects.

libcst's parse is most of a check's time, and most of a real file is code no rule can
flag. So the engine splits a file (with CPython's ``ast``, in C) into units:

- each function and class defined at module level;
- each method (or nested class) of such a class; the class's header and own
  statements are kept with any of them (what its methods store in attributes, a rule
  reads from the project index, not from ``__init__``);
- the module's own statements, kept whenever the file is parsed.

Each rule's gate (see :mod:`qig_guard.rules.gates`) reads a unit's identifiers, with
those of the module statements that bind the globals it uses; a rule may also read the
functions a unit calls, or its callers (see :mod:`qig_guard.engine.gating`). The units
some gate selects, and what their rules read with them, are handed to libcst. The other
units' lines are blanked, so every kept line keeps its number and columns: positions,
fixes and ``# noqa`` comments need no mapping. The names a blanked unit binds are passed
to name resolution (see :class:`~qig_guard.engine.resolve.ScopeTracker`), so they still
shadow what they shadow.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import libcst as cst

from qig_guard.engine.parsing import split_lines
from qig_guard.engine.resolve import REEXPORTED_MODULES

Owner = tuple[str, ...]  # () for the module, ("Model",) for the body of class Model

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class Unit:
    """Lines ``start``..``end`` (1-based, decorators included) of one statement."""

    start: int
    end: int
    owner: Owner
    binds: frozenset[str]
    # The class this unit belongs to, when it is one's member or own statement.
    enclosing: str | None = None
    # Kept whatever the gates say (the module's own statements).
    always: bool = False
    # The function or class it defines, if it is a definition.
    name: str | None = None
    # Its ``ast`` nodes: the statement, or a class header's decorators, bases, keywords
    # and own statements before its first member.
    nodes: tuple[ast.AST, ...] = ()


@dataclass
class Layout:
    """A module's units, and per class the units that hold it together."""

    units: list[Unit] = field(default_factory=list)
    # Per unit of a class: the units of its header and own statements (kept together).
    scaffold: dict[int, list[int]] = field(default_factory=dict)
    # Per class header unit: its member units (functions and nested classes).
    members: dict[int, list[int]] = field(default_factory=dict)


def first_line(node: ast.stmt) -> int:
    """The statement's first line, its decorators' included."""
    decorators = getattr(node, "decorator_list", None)
    return min([node.lineno, *(d.lineno for d in decorators)]) if decorators else node.lineno


def _end_line(node: ast.stmt) -> int:
    return node.end_lineno or node.lineno


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _target_names(element)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def bound_names(statements: Sequence[ast.stmt]) -> Iterator[str]:
    """Names ``statements`` bind in their own scope, as the libcst binding collector
    finds them: statements are walked, expressions and nested scopes are not."""
    for name, _ in bindings(statements):
        yield name


def bindings(statements: Sequence[ast.stmt]) -> Iterator[tuple[str, ast.AST]]:
    """``(name, where)`` for each name :func:`bound_names` finds: the assignment, the
    ``for``, ``with``, ``except`` or definition that binds it."""
    for node in statements:
        if isinstance(node, DEFINITIONS):
            yield node.name, node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                yield from ((name, node) for name in _target_names(target))
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                yield from ((name, node) for name in _target_names(node.target))
        elif isinstance(node, ast.AugAssign):
            yield from ((name, node) for name in _target_names(node.target))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            yield from ((name, node) for name in _target_names(node.target))
            yield from bindings(node.body)
            yield from bindings(node.orelse)
        elif isinstance(node, (ast.While, ast.If)):
            yield from bindings(node.body)
            yield from bindings(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    yield from ((name, node) for name in _target_names(item.optional_vars))
            yield from bindings(node.body)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            try_node: ast.Try = node  # type: ignore[assignment]
            yield from bindings(try_node.body)
            for handler in try_node.handlers:
                if handler.name:
                    yield handler.name, handler
                yield from bindings(handler.body)
            yield from bindings(try_node.orelse)
            yield from bindings(try_node.finalbody)
        elif type(node).__name__ == "Match":
            for case in node.cases:  # type: ignore[attr-defined]
                yield from bindings(case.body)


def value_lines(where: ast.AST) -> tuple[int, int] | None:
    """The lines of a binding that gives its name a value a rule can follow: an
    assignment, or a ``for`` header (its target takes the iterable's elements)."""
    if isinstance(where, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return where.lineno, where.end_lineno or where.lineno
    if isinstance(where, (ast.For, ast.AsyncFor)):
        return where.lineno, where.iter.end_lineno or where.lineno
    return None


def layout(tree: ast.Module) -> Layout:
    """Split ``tree`` (the module's ``ast``) into units."""
    result = Layout()
    units = result.units
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            members = [m for m in node.body if isinstance(m, DEFINITIONS)]
            if not members:
                unit = Unit(first_line(node), _end_line(node), (), frozenset({node.name}))
                unit.name, unit.nodes = node.name, (node,)
                units.append(unit)
                continue
            owner = (node.name,)
            # The header: decorators, bases and the statements before the first member.
            header_end = max(first_line(members[0]) - 1, node.lineno)
            scaffold = [len(units)]
            header = Unit(first_line(node), header_end, (), frozenset({node.name}), node.name)
            header.name = node.name
            own = [m for m in node.body if first_line(m) <= header_end]
            header.nodes = (*node.decorator_list, *node.bases, *node.keywords, *own)
            units.append(header)
            member_units = []
            for member in node.body:
                if first_line(member) <= header_end:
                    continue
                if isinstance(member, DEFINITIONS):
                    member_units.append(len(units))
                else:
                    scaffold.append(len(units))
                binds = frozenset(bound_names([member]))
                unit = Unit(first_line(member), _end_line(member), owner, binds, node.name)
                unit.name, unit.nodes = getattr(member, "name", None), (member,)
                units.append(unit)
            for index in scaffold + member_units:
                result.scaffold[index] = scaffold
            result.members[scaffold[0]] = member_units
        elif isinstance(node, DEFINITIONS):
            unit = Unit(first_line(node), _end_line(node), (), frozenset({node.name}))
            unit.name, unit.nodes = node.name, (node,)
            units.append(unit)
        else:
            binds = frozenset(bound_names([node]))
            units.append(
                Unit(first_line(node), _end_line(node), (), binds, always=True, nodes=(node,))
            )
    return result


def unit_text(lines: Sequence[str], unit: Unit) -> str:
    return "".join(lines[unit.start - 1 : unit.end])


@dataclass
class Slice:
    """The text handed to libcst, the names its blanked units bind per scope, and per
    kept definition (by its first line) the rules that read it."""

    text: str
    hidden: dict[Owner, frozenset[str]]
    kept_lines: int
    rules_at: dict[int, frozenset[str]] = field(default_factory=dict)
    # CPython's ``ast`` of ``text``: the file's, less the blanked statements.
    tree: ast.Module | None = None


def cut(source: str, tree: ast.Module, tree_layout: Layout, active: dict[int, set[str]]) -> Slice:
    """``source`` with every unit that no rule reads (``active``: the rules that read
    each unit) and that is not always kept blanked."""
    units = tree_layout.units
    kept = set(active)
    for index in list(active):
        for part in tree_layout.scaffold.get(index, ()):
            kept.add(part)
            active.setdefault(part, set()).update(active[index])
    kept.update(i for i, unit in enumerate(units) if unit.always)
    _keep_shadowing(units, kept)
    _keep_shared_lines(units, kept)
    for index in list(kept):  # a member kept for its own sake keeps its class's header
        kept.update(tree_layout.scaffold.get(index, ()))
    _keep_class_bodies(units, tree_layout, kept)
    rules_at = {
        units[i].start: frozenset(active.get(i, ()))
        for i in kept
        if units[i].name is not None and not units[i].always
    }
    if len(kept) == len(units):
        return Slice(source, {}, source.count("\n"), rules_at, tree)
    lines = split_lines(source)
    hidden: dict[Owner, set[str]] = {}
    blank = bytearray(len(lines) + 2)
    for index, unit in enumerate(units):
        if index in kept:
            continue
        hidden.setdefault(unit.owner, set()).update(unit.binds)
        blank[unit.start : unit.end + 1] = b"\1" * (unit.end - unit.start + 1)
    out = []
    kept_lines = 0
    plain_breaks = "\r" not in source
    start = 1  # the first line of the current run, kept or blanked
    while start <= len(lines):
        blanked = blank[start]
        end = blank.find(b"\0" if blanked else b"\1", start, len(lines) + 1)
        end = len(lines) + 1 if end < 0 else end
        if not blanked:
            kept_lines += end - start
            out.extend(lines[start - 1 : end - 1])
        elif plain_breaks:
            # A run of blanked lines is one logical line: each but the last ends in a
            # line continuation, so libcst builds one empty line for the run, not one
            # node per line (a fifth of a parse's nodes), and numbering is unchanged.
            out.append("\\\n" * (end - start - 1) + "\n")
        else:
            endings = [
                line[len(line.rstrip("\r\n")) :] or "\n" for line in lines[start - 1 : end - 1]
            ]
            out.append("".join("\\" + ending for ending in endings[:-1]) + endings[-1])
        start = end
    hidden_names = {k: frozenset(v) for k, v in hidden.items()}
    return Slice("".join(out), hidden_names, kept_lines, rules_at, _pruned(tree, blank))


def _pruned(tree: ast.Module, blank: bytearray) -> ast.Module:
    """``tree`` without the statements on blanked lines (a class keeps what is left)."""
    body = []
    for node in tree.body:
        if blank[first_line(node)]:
            continue
        if isinstance(node, ast.ClassDef):
            kept = [member for member in node.body if not blank[first_line(member)]]
            if len(kept) != len(node.body):
                node = copy.copy(node)
                node.body = kept
        body.append(node)
    return ast.Module(body=body, type_ignores=[])


def regions(
    module: cst.Module, tree: ast.Module, rules_at: dict[int, frozenset[str]]
) -> dict[int, frozenset[str]]:
    """Per ``id`` of a module-level definition or class member in ``module``, the rules
    that read it; ``tree`` is the ``ast`` of the same text, which places them."""
    found: dict[int, frozenset[str]] = {}

    def pair(nodes: Sequence[cst.CSTNode], statements: Sequence[ast.stmt]) -> None:
        definitions = [n for n in nodes if isinstance(n, (cst.FunctionDef, cst.ClassDef))]
        placed = [s for s in statements if isinstance(s, DEFINITIONS)]
        for node, statement in zip(definitions, placed, strict=True):
            rules = rules_at.get(first_line(statement))
            if rules is not None:  # else every rule reads it
                found[id(node)] = rules
            if (
                isinstance(node, cst.ClassDef)
                and isinstance(statement, ast.ClassDef)
                and isinstance(node.body, cst.IndentedBlock)
            ):
                pair(node.body.body, statement.body)

    pair(module.body, tree.body)
    return found


def _keep_class_bodies(units: list[Unit], tree_layout: Layout, kept: set[int]) -> None:
    """A kept class with no kept member keeps its first (its body must not be empty)."""
    for header, indices in tree_layout.members.items():
        if indices and header in kept and not any(i in kept for i in indices):
            kept.add(min(indices, key=lambda i: units[i].end - units[i].start))


def _keep_shadowing(units: list[Unit], kept: set[int]) -> None:
    """Keep a unit whose binding may decide what an import or a re-exported module
    name resolves to in its scope (the order of bindings matters there)."""
    imported: dict[Owner, set[str]] = {}
    for index in kept:
        unit = units[index]
        imported.setdefault(unit.owner, set()).update(unit.binds)
    for index, unit in enumerate(units):
        if index in kept:
            continue
        if unit.binds & (imported.get(unit.owner, set()) | REEXPORTED_MODULES.keys()):
            kept.add(index)


def _keep_shared_lines(units: list[Unit], kept: set[int]) -> None:
    """A blanked unit on a line that a kept unit also uses is kept (``a = 1; def f(): ...``
    cannot be: ``class A: x = 1`` can)."""
    kept_lines: set[int] = set()
    for index in kept:
        kept_lines.update((units[index].start, units[index].end))
    for index, unit in enumerate(units):
        if index not in kept and (unit.start in kept_lines or unit.end in kept_lines):
            kept.add(index)
