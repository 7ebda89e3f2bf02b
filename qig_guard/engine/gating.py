"""Which rules run on a file, and over which of its units (see gates and slicing)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qig_guard.engine.findings import FILE_ERROR
from qig_guard.engine.parsing import split_lines
from qig_guard.engine.slicing import (
    DEFINITIONS,
    Layout,
    Slice,
    bindings,
    cut,
    layout,
    unit_text,
    value_lines,
)
from qig_guard.rules.gates import (
    FileScope,
    IdentifierPattern,
    Unit,
    aliases,
    code_text,
    unit_identifiers,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from qig_guard.config import Config
    from qig_guard.facts.project import ProjectFacts
    from qig_guard.rules.base import Rule


@dataclass
class Selection:
    """The rules to run (empty: the file need not be parsed) and, when only part of
    the file needs parsing, that part."""

    rules: list[type[Rule]]
    sliced: Slice | None = None


def select(
    path: str,
    source: str,
    config: Config,
    rules: list[type[Rule]],
    project: ProjectFacts,
    whole: bool = False,
    tree: ast.Module | None = None,
) -> Selection:
    """Evaluate each rule's gate over ``source``'s units; ``whole`` parses every unit
    of a file that some gate selects (an editor reparses incrementally). ``tree``, when
    given, is CPython's ``ast`` of ``source``, parsed already."""
    code = code_text(source)
    lines = split_lines(code)
    # The lines are the source's unless a lone "\r" in a string went, or an f-string's
    # field spanned lines: without a "\r", the counts of line feeds tell.
    if ("\r" in source or code.count("\n") != source.count("\n")) and len(lines) != len(
        split_lines(source)
    ):
        code, lines = source, split_lines(source)
    scope = FileScope(config, project, aliases(code), source=source, code=code)
    everywhere = Unit(code, unit_identifiers(code, scope))  # its nodes are not known yet
    # What a rule's callees stand for may be found in a unit that does not spell it; the
    # whole file uses it where some unit may call such a callee.
    scope.identifiers = everywhere.identifiers.union(*(rule.callees_stand_for for rule in rules))
    callee_tests = {
        rule.code: rule.callees.compile(scope) for rule in rules if rule.callees is not None
    }
    everywhere.identifiers = everywhere.identifiers.union(
        *(
            rule.callees_stand_for
            for rule in rules
            if rule.code in callee_tests and callee_tests[rule.code](everywhere)
        )
    )
    tests = {rule.code: rule.gate.compile(scope) for rule in rules if rule.code != FILE_ERROR}
    candidates = [rule for rule in rules if rule.code in tests and tests[rule.code](everywhere)]
    if not candidates or whole:
        return Selection(candidates)
    try:
        if tree is None:
            tree = ast.parse(source)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return Selection(candidates)  # reported when parsed
    scope.module_of = imported_from(tree)
    shape = layout(tree)
    units = shape.units
    texts = [unit_text(lines, unit) for unit in units]
    own = [
        unit_identifiers(text, scope, (unit.enclosing,) if unit.enclosing else ())
        for unit, text in zip(units, texts, strict=True)
    ]
    # Each unit as the gates read it on its own.
    alone = [
        Unit(text, identifiers, unit.nodes, unit.enclosing)
        for unit, text, identifiers in zip(units, texts, own, strict=True)
    ]
    calls = _Calls(shape, texts)
    module = {index for index, unit in enumerate(units) if unit.always}
    active: dict[int, set[str]] = {}  # per unit to parse, the rules that read it
    fired: set[str] = set()
    reads_callers = {
        rule.code: rule.callers.compile(scope) for rule in candidates if rule.callers is not None
    }
    # Per rule that reads callees, whether its ``callees`` gate holds in a called unit.
    readable: dict[str, dict[int, bool]] = {}

    def readable_callees(code: str, callers: Iterable[int]) -> set[int]:
        test = callee_tests.get(code)
        if test is None:
            return set()
        known = readable.setdefault(code, {})
        found = set()
        for callee in set().union(*(calls.of(caller) for caller in callers)):
            holds = known.get(callee)
            if holds is None:
                holds = known[callee] = test(alone[callee])
            if holds:
                found.add(callee)
        return found

    def gate(rule: type[Rule], unit: Unit, kept: Iterable[int], callers: Iterable[int]) -> None:
        """Where the rule's gate holds in ``unit``, the rule reads the units ``kept`` and
        those ``callers`` call that its ``callees`` gate holds in; a call of one of these
        counts as using the rule's ``callees_stand_for`` (``dot(unit(a), unit(b))`` is a
        cosine when ``unit`` normalises)."""
        test = tests[rule.code]
        stand_for = rule.callees_stand_for
        if test(unit):
            callees = readable_callees(rule.code, callers)
        elif stand_for and test(
            Unit(unit.text, unit.identifiers | stand_for, unit.nodes, unit.enclosing)
        ):
            callees = readable_callees(rule.code, callers)  # the calls, only when they matter
            if not callees:
                return
        else:
            return
        for index in (*kept, *callees):
            active.setdefault(index, set()).add(rule.code)
        fired.add(rule.code)

    if module:
        joined_module = _joined(sorted(module), alone)
        for rule in candidates:
            gate(rule, joined_module, module, module)
    # Where the module gives each name a value: a rule follows a global that a function
    # reads to its assignment (``delta = a - b`` above ``def f(): return norm(delta)``),
    # so a unit's gate also sees the assignments of the globals it uses.
    values = _global_values(tree, lines, scope)
    for index in range(len(units)):
        if index in module:
            continue
        unit = alone[index]
        for name in sorted(own[index] & values.keys()):
            unit = _with(unit, values[name])
        defined = units[index].name
        called_by = None
        for rule in candidates:
            # A rule that reads callees keeps the units the unit calls where its
            # ``callees`` gate holds (a normaliser helper). Where its ``callers`` gate
            # holds of the unit's name (a distance helper, whose operands may be the
            # basins its callers pass), its gate also sees the callers' identifiers, and
            # the callers are kept too.
            reads = reads_callers.get(rule.code)
            if reads is not None and defined and reads(Unit(defined, frozenset({defined}))):
                called_by = calls.callers(index) if called_by is None else called_by
                if called_by:
                    with_callers = _joined(sorted(called_by), alone)
                    gate(rule, _with(unit, with_callers), {index, *called_by}, (index,))
                    continue
            gate(rule, unit, (index,), (index,))
    chosen = [rule for rule in candidates if rule.code in fired]
    if not chosen:
        return Selection([])
    if any(rule.reads == "file" for rule in chosen):
        return Selection(chosen)
    for index in module:  # the module's own code is read by every rule that runs
        active[index] = set(fired)
    return Selection(chosen, cut(source, tree, shape, active))


def _joined(members: list[int], alone: list[Unit]) -> Unit:
    """The units ``members`` of ``alone`` read as one (a class, the module, callers)."""
    units = [alone[i] for i in members]
    return Unit(
        "".join(unit.text for unit in units),
        frozenset().union(*(unit.identifiers for unit in units)),
        tuple(node for unit in units for node in unit.nodes or ()),
    )


def _with(unit: Unit, other: Unit) -> Unit:
    both = None if unit.nodes is None or other.nodes is None else unit.nodes + other.nodes
    return Unit(unit.text + other.text, unit.identifiers | other.identifiers, both, unit.enclosing)


def _global_values(tree: ast.Module, lines: list[str], scope: FileScope) -> dict[str, Unit]:
    """Per name the module assigns (also in its ``if``, ``try``, ``for`` and ``with``
    blocks), the text and identifiers of those assignments."""
    spans: dict[str, list[tuple[int, int]]] = {}
    wheres: dict[str, list[ast.AST]] = {}
    for name, where in bindings([s for s in tree.body if not isinstance(s, DEFINITIONS)]):
        found = value_lines(where)
        if found is not None:
            spans.setdefault(name, []).append(found)
            wheres.setdefault(name, []).append(where)
    values = {}
    for name, places in spans.items():
        text = "".join("".join(lines[start - 1 : end]) for start, end in places)
        values[name] = Unit(text, unit_identifiers(text, scope), tuple(wheres[name]))
    return values


# Calls by text: `self.step(`, `cls.build(` (methods of the unit's class) and `helper(`
# (module functions and classes).
_METHOD_CALL = IdentifierPattern(r"\b(?:self|cls)[ \t]*\.[ \t]*([^\W\d]\w*)[ \t]*\(")
_CALL = IdentifierPattern(r"(?<![\w.])([^\W\d]\w*)[ \t]*\(")


class _Calls:
    """Which units each unit may call, read from its text when first asked: module
    functions and classes it calls by name, and the methods of its own class it calls
    on ``self`` or ``cls``."""

    def __init__(self, shape: Layout, texts: list[str]) -> None:
        self._units = shape.units
        self._texts = texts
        self._module_level = {
            unit.name: i for i, unit in enumerate(self._units) if unit.owner == () and unit.name
        }
        self._members: dict[str, dict[str, int]] = {}
        for index, unit in enumerate(self._units):
            if unit.owner and unit.name:
                self._members.setdefault(unit.owner[0], {})[unit.name] = index
        self._of: dict[int, set[int]] = {}
        self._callers: list[set[int]] | None = None

    def of(self, index: int) -> set[int]:
        """The units that unit ``index`` may call (not itself)."""
        found = self._of.get(index)
        if found is None:
            text, unit = self._texts[index], self._units[index]
            names = set(_CALL.findall(text)) & self._module_level.keys()
            found = {self._module_level[name] for name in names}
            if unit.owner:
                methods = self._members.get(unit.owner[0], {})
                found.update(methods[n] for n in set(_METHOD_CALL.findall(text)) & methods.keys())
            found.discard(index)
            self._of[index] = found
        return found

    def callers(self, index: int) -> set[int]:
        """The units that may call unit ``index``."""
        if self._callers is None:
            self._callers = [set() for _ in self._units]
            for caller in range(len(self._units)):
                for callee in self.of(caller):
                    self._callers[callee].add(caller)
        return self._callers[index]


def imported_from(tree: ast.Module) -> dict[str, str]:
    """``{name: module}`` for the module-level ``from module import name`` statements
    (also inside a module-level ``if`` or ``try``), by the top package of ``module``."""
    found: dict[str, str] = {}
    statements = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                found[alias.asname or alias.name] = node.module.split(".")[0]
        elif isinstance(node, (ast.If, ast.Try)):
            statements.extend(node.body)
            statements.extend(node.orelse)
            for handler in getattr(node, "handlers", ()):
                statements.extend(handler.body)
    return found
