"""Which rules run on a file, and over which of its units (see gates and slicing)."""

from __future__ import annotations

import ast
import re
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
from qig_guard.rules.gates import FileScope, Unit, aliases, code_text, unit_identifiers

if TYPE_CHECKING:
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
) -> Selection:
    """Evaluate each rule's gate over ``source``'s units; ``whole`` parses every unit
    of a file that some gate selects (an editor reparses incrementally)."""
    code = code_text(source)
    lines = split_lines(code)
    if len(lines) != len(split_lines(source)):  # a lone "\r" in a string
        code, lines = source, split_lines(source)
    scope = FileScope(config, project, aliases(code), source=source, code=code)
    everywhere = Unit(code, unit_identifiers(code, scope))
    scope.identifiers = everywhere.identifiers
    tests = {rule.code: rule.gate.compile(scope) for rule in rules if rule.code != FILE_ERROR}
    candidates = [rule for rule in rules if rule.code in tests and tests[rule.code](everywhere)]
    if not candidates or whole:
        return Selection(candidates)
    try:
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
    reads_calls = any(r.callees is not None or r.callers is not None for r in candidates)
    calls = _calls(shape, texts) if reads_calls else [set() for _ in units]
    callers: list[set[int]] = [set() for _ in units]
    for caller, callees in enumerate(calls):
        for callee in callees:
            callers[callee].add(caller)
    module = {index for index, unit in enumerate(units) if unit.always}
    active: dict[int, set[str]] = {}  # per unit to parse, the rules that read it
    fired: set[str] = set()
    reads_callers = {
        rule.code: rule.callers.compile(scope) for rule in candidates if rule.callers is not None
    }
    # Per rule that reads callees, the called units its ``callees`` gate holds in.
    called = set().union(*calls)
    readable_callees: dict[str, set[int]] = {}
    for rule in candidates:
        if rule.callees is not None:
            test = rule.callees.compile(scope)
            readable_callees[rule.code] = {i for i in called if test(Unit(texts[i], own[i]))}

    def gate(rule: type[Rule], unit: Unit, kept: set[int]) -> None:
        """Where the rule's gate holds in ``unit``, the rule reads the units ``kept``."""
        if tests[rule.code](unit):
            for index in kept:
                active.setdefault(index, set()).add(rule.code)
            fired.add(rule.code)

    if module:
        joined_module = _joined(sorted(module), texts, own)
        for rule in candidates:
            gate(rule, joined_module, module)
    # Where the module gives each name a value: a rule follows a global that a function
    # reads to its assignment (``delta = a - b`` above ``def f(): return norm(delta)``),
    # so a unit's gate also sees the assignments of the globals it uses.
    values = _global_values(tree, lines, scope)
    for index in range(len(units)):
        if index in module:
            continue
        unit = Unit(texts[index], own[index])
        for name in sorted(own[index] & values.keys()):
            unit = _with(unit, values[name])
        for rule in candidates:
            # A rule that reads callees keeps the units the unit calls where its
            # ``callees`` gate holds (a normaliser helper). Where its ``callers`` gate
            # holds (a distance helper, whose operands may be the basins its callers
            # pass), its gate also sees the callers' identifiers, and the callers are
            # kept too.
            kept = {index} | (calls[index] & readable_callees.get(rule.code, set()))
            reads = reads_callers.get(rule.code)
            if reads is not None and callers[index] and reads(unit):
                with_callers = _joined(sorted(callers[index]), texts, own)
                gate(rule, _with(unit, with_callers), kept | callers[index])
            else:
                gate(rule, unit, kept)
    chosen = [rule for rule in candidates if rule.code in fired]
    if not chosen:
        return Selection([])
    if any(rule.reads == "file" for rule in chosen):
        return Selection(chosen)
    for index in module:  # the module's own code is read by every rule that runs
        active[index] = set(fired)
    return Selection(chosen, cut(source, tree, shape, active))


def _joined(members: list[int], texts: list[str], own: list[frozenset[str]]) -> Unit:
    return Unit("".join(texts[i] for i in members), frozenset().union(*(own[i] for i in members)))


def _with(unit: Unit, other: Unit) -> Unit:
    return Unit(unit.text + other.text, unit.identifiers | other.identifiers)


def _global_values(tree: ast.Module, lines: list[str], scope: FileScope) -> dict[str, Unit]:
    """Per name the module assigns (also in its ``if``, ``try``, ``for`` and ``with``
    blocks), the text and identifiers of those assignments."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for name, where in bindings([s for s in tree.body if not isinstance(s, DEFINITIONS)]):
        found = value_lines(where)
        if found is not None:
            spans.setdefault(name, []).append(found)
    values = {}
    for name, places in spans.items():
        text = "".join("".join(lines[start - 1 : end]) for start, end in places)
        values[name] = Unit(text, unit_identifiers(text, scope))
    return values


# Calls by text: `self.step(`, `cls.build(` (methods of the unit's class) and `helper(`
# (module functions and classes).
_METHOD_CALL = re.compile(r"\b(?:self|cls)[ \t]*\.[ \t]*([^\W\d]\w*)[ \t]*\(")
_CALL = re.compile(r"(?<![\w.])([^\W\d]\w*)[ \t]*\(")


def _calls(shape: Layout, texts: list[str]) -> list[set[int]]:
    """Per unit, the units it may call: module functions and classes it calls by name,
    and the methods of its own class it calls on ``self`` or ``cls``."""
    units = shape.units
    module_level = {unit.name: i for i, unit in enumerate(units) if unit.owner == () and unit.name}
    members: dict[str, dict[str, int]] = {}
    for index, unit in enumerate(units):
        if unit.owner and unit.name:
            members.setdefault(unit.owner[0], {})[unit.name] = index
    calls: list[set[int]] = []
    for index, unit in enumerate(units):
        text = texts[index]
        callees = {module_level[n] for n in set(_CALL.findall(text)) & module_level.keys()}
        if unit.owner:
            methods = members.get(unit.owner[0], {})
            callees.update(methods[n] for n in set(_METHOD_CALL.findall(text)) & methods.keys())
        callees.discard(index)
        calls.append(callees)
    return calls


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
