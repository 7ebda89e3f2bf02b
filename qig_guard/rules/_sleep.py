"""Where sleep/consolidation code is, shared by QIG007 and QIG008.

Sleep code is any function or method whose own name, an enclosing function's
name or an enclosing class's name matches the configured ``sleep-functions``
(by words: ``consolidate_toward_basin``, ``SleepProtocol.run``, a closure
inside ``dream``).

Elastic Weight Consolidation is not sleep code: nothing in a chain that names
``ewc``, ``fisher``, ``importance``, ``penalty`` or ``regulari*``
(``class EWC``, ``consolidate_fisher``), nor a function that accumulates
squared gradients into a Fisher estimate (``p.grad ** 2``,
``p.grad.pow(2)``), even when it is called ``consolidate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path, PurePath

import libcst as cst

from qig_guard.config import Config
from qig_guard.engine.resolve import ScopeTracker
from qig_guard.engine.traversal import nodes_below
from qig_guard.facts.words import matches_any

_NOT_SLEEP = ("ewc", "fisher", "importance", "penalty", "regulari*")


def _is_grad(node: cst.BaseExpression) -> bool:
    """Does the attribute/call chain ``node`` go through a ``.grad``?"""
    while True:
        if isinstance(node, cst.Attribute):
            if node.attr.value == "grad":
                return True
            node = node.value
        elif isinstance(node, cst.Call):
            node = node.func
        elif isinstance(node, cst.Name):
            return node.value == "grad"
        else:
            return False


def _is_two(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Integer) and node.value == "2"


def _squares_a_gradient(node: cst.CSTNode) -> bool:
    """``g.grad ** 2``, ``g.grad.pow(2)``, ``g.grad.square()`` or ``g.grad * g.grad``."""
    if isinstance(node, cst.BinaryOperation):
        if isinstance(node.operator, cst.Power):
            return _is_grad(node.left) and _is_two(node.right)
        if isinstance(node.operator, cst.Multiply) and _is_grad(node.left):
            module = cst.Module([])
            return module.code_for_node(node.left) == module.code_for_node(node.right)
        return False
    if isinstance(node, cst.Call):
        func = node.func
        if isinstance(func, cst.Attribute) and _is_grad(func.value):
            square = func.attr.value == "square" and not node.args
            power = func.attr.value in ("pow", "pow_") and len(node.args) == 1
            return square or (power and _is_two(node.args[0].value))
    return False


@lru_cache(maxsize=256)  # nodes hash by identity; a nested def asks again of its outers
def _estimates_fisher(function: cst.FunctionDef) -> bool:
    return any(_squares_a_gradient(node) for node in nodes_below(function.body))


@lru_cache(maxsize=1024)
def is_test_file(path: str, root: Path) -> bool:
    """A test module by pytest's and unittest's conventions: ``test_*.py``,
    ``*_test.py``, ``conftest.py``, or a module in a ``tests``/``test`` folder of the
    project (below ``root``; for a path outside it, among its last three folders)."""
    pure = PurePath(path)
    name = pure.name
    if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return True
    try:
        folders = pure.relative_to(root).parts[:-1] if pure.is_absolute() else pure.parts[:-1]
    except ValueError:
        folders = pure.parts[-4:-1]
    return any(folder in ("tests", "test") for folder in folders)


def _is_test(functions: Sequence[cst.FunctionDef], classes: Sequence[cst.ClassDef]) -> bool:
    """A test function (``test*``) or a method of a test class (``Test*``)."""
    return any(f.name.value.startswith("test") for f in functions) or any(
        c.name.value.startswith("Test") for c in classes
    )


def sleep_function(scopes: ScopeTracker, config: Config, path: str = "") -> cst.FunctionDef | None:
    """The innermost enclosing function when it is sleep code, else ``None``.

    Tests are not sleep code, whatever they are named: a ``test*`` function, a
    method of a ``Test*`` class, anything in a test file (``path``). They build
    random basins and drive models to check the sleep code they test.
    """
    functions = scopes.functions
    if not functions:
        return None
    names = config.sleep_functions
    chain = [node.name.value for node in functions] + [c.name.value for c in scopes.classes]
    if not any(matches_any(name, names) for name in chain):
        return None
    if any(matches_any(name, _NOT_SLEEP) for name in chain):
        return None
    if _is_test(functions, scopes.classes) or is_test_file(path, config.root):
        return None
    if any(_estimates_fisher(f) for f in functions):
        return None
    return functions[-1]
