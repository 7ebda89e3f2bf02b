"""Which expressions move a basin toward other values, for QIG003.

A *move* blends a basin with something else: an additive blend
(``0.95 * b + 0.05 * m``, ``b + w * (m - b)``, ``b - lr * g``), a call of a
blend helper given the basin and another value (``slerp(b, m, 0.05)``,
``torch.lerp(b, m, w)``, ``geodesic_step(b, m)``), or an in-place update of the
basin (``b.lerp_(m, w)``, ``b.mul_(0.95).add_(0.05 * m)``, ``b.copy_(blend)``).
Reading, copying, normalising or scaling the basin by itself is no move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.engine.traversal import children
from qig_guard.facts.words import words

# Callees that blend their arguments, by a word of their name.
BLEND_WORDS = frozenset(
    {"lerp", "slerp", "geodesic", "interpolate", "interp", "blend", "mix", "nudge", "ema"}
    | {"toward", "towards", "average", "mean", "centroid", "barycenter"}
)
# In-place tensor methods that move their receiver toward their arguments.
IN_PLACE_MOVES = frozenset({"lerp_", "add_", "sub_", "addcmul_", "addcdiv_", "copy_"})
# In-place methods that keep the receiver the receiver, for finding the base of a chain.
_IN_PLACE = IN_PLACE_MOVES | {"mul_", "div_", "clamp_", "abs_", "sqrt_", "pow_"}

IsBasin = Callable[[str], bool]


def reads(node: cst.CSTNode) -> Iterator[str]:
    """The dotted names whose values ``node`` reads (callees of plain calls and
    subscript indices left out): ``a``, ``self.b`` of ``f(a) * self.b[i].mean()``."""
    if isinstance(node, (cst.Name, cst.Attribute)):
        dotted = dotted_name(node)
        if dotted is not None:
            yield dotted
            return
    if isinstance(node, cst.Call):
        if isinstance(node.func, cst.Attribute):
            yield from reads(node.func.value)
        for arg in node.args:
            yield from reads(arg.value)
        return
    if isinstance(node, cst.Subscript):
        yield from reads(node.value)
        return
    for child in children(node):
        yield from reads(child)


def _mixes(sides: list[cst.CSTNode], is_basin: IsBasin) -> bool:
    """Does one side read the basin and another side read something else?"""
    read = [list(reads(side)) for side in sides]
    with_basin = {i for i, names in enumerate(read) if any(map(is_basin, names))}
    with_other = {i for i, names in enumerate(read) if not all(map(is_basin, names))}
    return any(i != j for i in with_basin for j in with_other)


def _blended_values(call: cst.Call) -> list[cst.CSTNode]:
    """The values a blend call mixes: its arguments, and the elements of a list or
    tuple argument (`frechet_mean([ocean.basin, b])`)."""
    found: list[cst.CSTNode] = []
    for arg in call.args:
        value = arg.value
        if isinstance(value, (cst.List, cst.Tuple)):
            found += [element.value for element in value.elements]
        else:
            found.append(value)
    return found


def moves_toward(value: cst.CSTNode, is_basin: IsBasin) -> bool:
    """Does ``value`` blend a basin (``is_basin`` of a dotted name) with another value?"""
    if isinstance(value, cst.BinaryOperation) and isinstance(
        value.operator, (cst.Add, cst.Subtract)
    ):
        if _mixes([value.left, value.right], is_basin):
            return True
    elif isinstance(value, cst.Call):
        callee = dotted_name(value.func)
        last = callee.rsplit(".", 1)[-1] if callee is not None else ""
        blend = not BLEND_WORDS.isdisjoint(words(last))
        if blend and _mixes(_blended_values(value), is_basin):
            return True
    return any(moves_toward(child, is_basin) for child in children(value))


def in_place_base(call: cst.Call) -> cst.BaseExpression | None:
    """The tensor an in-place chain updates: ``b`` of ``b.mul_(0.9).add_(m)``."""
    node: cst.BaseExpression = call
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        if node.func.attr.value not in _IN_PLACE:
            return None
        node = node.func.value
    while isinstance(node, cst.Attribute) and node.attr.value == "data":
        node = node.value
    return node


def in_place_move(call: cst.Call, is_basin: IsBasin, blended: Callable[[str], bool]) -> bool:
    """Is ``call`` an in-place move of a basin: ``lerp_`` of it, ``add_``/``sub_``
    of another value into it, ``copy_`` of a blend (``blended`` names hold one)?"""
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value not in IN_PLACE_MOVES:
        return False
    base = in_place_base(call)
    base_name = dotted_name(base) if base is not None else None
    if base_name is None or not is_basin(base_name):
        return False
    method = func.attr.value
    if method == "lerp_":
        return True
    if method == "copy_":
        return any(
            moves_toward(arg.value, is_basin) or any(map(blended, reads(arg.value)))
            for arg in call.args
        )
    return any(not is_basin(name) for arg in call.args for name in reads(arg.value))
