"""Interpolations between two values and the literal values of their coefficients.

An interpolation moves a *start* toward an *end* by a *weight* (the end's share):
``a + w * (b - a)``, ``(1 - w) * a + w * b``, ``torch.lerp(a, b, w)``, ``a.lerp_(b, w)``
and helper calls ``slerp(a, b, t)``, ``geodesic_interpolate(a, b, t=...)``. A weight's
value is read when it is a literal, ``1 - x`` or a product of such, a local or a
module constant bound once to one, a parameter's default, or a constant the file
imports from a module of the same project (``from .constants import W``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.facts.words import words
from qig_guard.rules.base import number_value

# Words naming a function that interpolates between its first two arguments.
INTERPOLATION_WORDS = frozenset(
    {"lerp", "slerp", "interpolate", "interpolation", "interp", "blend", "mix", "geodesic"}
)
# Keyword names an interpolation helper takes its weight by.
_WEIGHT_KEYWORDS = ("t", "weight", "w", "alpha", "ratio", "fraction", "frac", "amount", "strength")


@dataclass(frozen=True)
class Interpolation:
    """``start`` moved toward ``end``; ``weight`` is the end's share (``None``: the
    start's share is ``start_weight``, as in ``0.8 * own + other * 0.2``)."""

    node: cst.CSTNode
    start: cst.BaseExpression
    end: cst.BaseExpression
    weight: cst.BaseExpression | None
    start_weight: cst.BaseExpression | None = None


def _is_interpolation_helper(func: cst.BaseExpression) -> bool:
    name = dotted_name(func)
    return name is not None and bool(
        INTERPOLATION_WORDS.intersection(words(name.rsplit(".", 1)[-1]))
    )


def call_interpolation(call: cst.Call, torch_lerp: bool) -> Interpolation | None:
    """``torch.lerp(a, b, w)`` (``torch_lerp``), ``a.lerp(b, w)``, ``slerp(a, b, t)``."""
    positional: list[cst.BaseExpression] = []
    keywords: dict[str, cst.BaseExpression] = {}
    for arg in call.args:
        if arg.star:
            return None
        if arg.keyword is None:
            positional.append(arg.value)
        else:
            keywords[arg.keyword.value] = arg.value
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value in ("lerp", "lerp_") and not torch_lerp:
        end = positional[0] if positional else keywords.get("end")
        weight = positional[1] if len(positional) > 1 else keywords.get("weight")
        if end is None or weight is None:
            return None
        return Interpolation(call, func.value, end, weight)
    if not torch_lerp and not _is_interpolation_helper(func):
        return None
    start = positional[0] if positional else keywords.get("input")
    end = positional[1] if len(positional) > 1 else keywords.get("end")
    weight = positional[2] if len(positional) > 2 else None
    if weight is None:
        named = [keywords[k] for k in ("weight", *_WEIGHT_KEYWORDS) if k in keywords]
        weight = named[0] if named else None
    if start is None or end is None or weight is None:
        return None
    return Interpolation(call, start, end, weight)


def _same(a: cst.BaseExpression, b: cst.BaseExpression) -> bool:
    name = dotted_name(a)
    return name is not None and name == dotted_name(b)


def binary_interpolation(
    node: cst.BinaryOperation,
    bound_once: Callable[[str], cst.BaseExpression | None],
    is_basin: Callable[[cst.BaseExpression], bool],
) -> Interpolation | None:
    """``a + w * (b - a)`` (also through ``d = b - a``) and ``c1 * a + c2 * b`` (the
    value of a term is its one basin factor)."""
    if not isinstance(node.operator, cst.Add):
        return None
    for start, step in ((node.left, node.right), (node.right, node.left)):
        if dotted_name(start) is None or not isinstance(step, cst.BinaryOperation):
            continue
        if not isinstance(step.operator, cst.Multiply):
            continue
        for weight, direction in ((step.left, step.right), (step.right, step.left)):
            if isinstance(direction, cst.Name) and (value := bound_once(direction.value)):
                direction = value
            if (
                isinstance(direction, cst.BinaryOperation)
                and isinstance(direction.operator, cst.Subtract)
                and _same(direction.right, start)
            ):
                return Interpolation(node, start, direction.left, weight)
    left, right = _weighted(node.left, is_basin), _weighted(node.right, is_basin)
    if left is None or right is None:
        return None
    (left_weight, left_value), (right_weight, right_value) = left, right
    return Interpolation(node, left_value, right_value, right_weight, left_weight)


def _weighted(
    node: cst.BaseExpression, is_basin: Callable[[cst.BaseExpression], bool]
) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
    """``(coefficient, basin)`` of a term ``c * basin`` or ``basin * c``."""
    if not isinstance(node, cst.BinaryOperation) or not isinstance(node.operator, cst.Multiply):
        return None
    left, right = is_basin(node.left), is_basin(node.right)
    if right and not left:
        return node.left, node.right
    if left and not right:
        return node.right, node.left
    return None


# -- values -----------------------------------------------------------------------


def number(node: cst.BaseExpression) -> float | None:
    """The value of an int/float literal, optionally signed."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        inner = number(node.expression)
        if inner is None:
            return None
        return -inner if isinstance(node.operator, cst.Minus) else inner
    return number_value(node)


Resolve = Callable[[cst.Name], float | None]


def value_of(node: cst.BaseExpression, resolve: Resolve, depth: int = 0) -> float | None:
    """The number ``node`` evaluates to when every name in it resolves to a literal."""
    if depth > 8:
        return None
    literal = number(node)
    if literal is not None:
        return literal
    if isinstance(node, cst.Name):
        return resolve(node)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = value_of(node.expression, resolve, depth + 1)
        return None if inner is None else -inner
    if isinstance(node, cst.BinaryOperation):
        left = value_of(node.left, resolve, depth + 1)
        right = value_of(node.right, resolve, depth + 1) if left is not None else None
        if left is None or right is None:
            return None
        if isinstance(node.operator, cst.Add):
            return left + right
        if isinstance(node.operator, cst.Subtract):
            return left - right
        if isinstance(node.operator, cst.Multiply):
            return left * right
        if isinstance(node.operator, cst.Divide) and right != 0:
            return left / right
    return None


# -- constants imported from the project ------------------------------------------


def module_file(path: str, module: str, level: int) -> Path | None:
    """The file of the project that ``from <level dots><module> import ...`` in ``path``
    refers to (found beside ``path`` or a folder above it), if there is one."""
    here = Path(path).resolve().parent
    relative = Path(*module.split(".")) if module else Path()
    if level:
        base = here
        for _ in range(level - 1):
            base = base.parent
        candidates: Iterator[Path] = iter([base / relative])
    else:
        candidates = (folder / relative for folder in (here, *here.parents))
    for candidate in candidates:
        for file in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if module and file.is_file():
                return file
    return None


def imported_constant(file: Path, name: str) -> float | None:
    """The literal value of ``name`` assigned at the top of the module ``file``."""
    try:
        stat = file.stat()
    except OSError:
        return None
    return _module_constants(str(file), stat.st_mtime_ns, stat.st_size).get(name)


@lru_cache(maxsize=256)
def _module_constants(file: str, mtime_ns: int, size: int) -> dict[str, float]:
    """Top-level names assigned exactly once, to a number (``W: Final[float] = 0.2``)."""
    try:
        with open(file, "rb") as handle:
            tree = ast.parse(handle.read(2_000_000))
    except (OSError, SyntaxError, ValueError):
        return {}
    values: dict[str, list[object]] = {}
    for statement in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        for target in targets:
            if isinstance(target, ast.Name) and value is not None:
                try:
                    literal = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    literal = None
                values.setdefault(target.id, []).append(literal)
    return {
        name: _as_float(found[0])
        for name, found in values.items()
        if len(found) == 1 and isinstance(found[0], (int, float)) and not isinstance(found[0], bool)
    }


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond a float's range
        return math.inf if value > 0 else -math.inf


__all__ = [
    "INTERPOLATION_WORDS",
    "Interpolation",
    "binary_interpolation",
    "call_interpolation",
    "imported_constant",
    "module_file",
    "number",
    "value_of",
]
