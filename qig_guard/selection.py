"""Which rules run on a file, and over which of its units (see gates and slicing)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qig_guard.gates import FileScope, Unit, aliases
from qig_guard.parsing import split_lines
from qig_guard.slicing import Slice, cut, layout, unit_text

if TYPE_CHECKING:
    from qig_guard.config import Config
    from qig_guard.facts.project import ProjectFacts
    from qig_guard.rules.base import Rule

FILE_ERROR = "QIG000"


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
    scope = FileScope(config, project, aliases(source))
    everywhere = Unit(source, scope)
    candidates = [
        rule
        for rule in rules
        if rule.code != FILE_ERROR and (rule.gate is None or rule.gate.holds(everywhere, scope))
    ]
    ungated = [rule for rule in candidates if rule.gate is None]
    if ungated:
        # A rule with a text trigger instead of a gate reads the whole file.
        mentioned = project.mentioned_in(source)
        ungated = [rule for rule in ungated if mentioned or rule.could_match(source, config)]
        candidates = [rule for rule in candidates if rule.gate is not None] + ungated
    gated = [rule for rule in candidates if rule.gate is not None]
    if not gated or whole or ungated:
        return Selection(sorted(candidates, key=lambda rule: rule.code))
    try:
        tree = ast.parse(source)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return Selection(sorted(candidates, key=lambda rule: rule.code))  # reported there
    lines = split_lines(source)
    shape = layout(tree, len(lines))
    selected: set[int] = set()
    fired: set[str] = set()
    for index, part in enumerate(shape.units):
        context = (part.enclosing,) if part.enclosing else ()
        unit = Unit(unit_text(lines, part), scope, context)
        for rule in gated:
            if rule.gate is not None and rule.gate.holds(unit, scope):
                selected.add(index)
                fired.add(rule.code)
    chosen = [rule for rule in candidates if rule.code in fired]
    if not chosen:
        return Selection([])
    return Selection(chosen, cut(source, shape, selected))
