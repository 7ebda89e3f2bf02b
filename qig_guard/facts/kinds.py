"""What kind of value an expression makes: a torch tensor, a NumPy array, a list...

Only a torch tensor can carry a gradient, so the gradient rules ask these
facts before reporting. The kind is read off the expression's shape (the
constructor or the method that made it), never off its name; ``None`` means
the shape does not say.
"""

from __future__ import annotations

import ast
import re
from typing import Literal

from qig_guard.facts.torch_api import VALUE_KEEPING_METHODS

Kind = Literal["tensor", "array", "list", "scalar", "str", "dict"]
NOT_TENSORS: frozenset[Kind] = frozenset({"array", "list", "scalar", "str", "dict"})

_METHOD_KINDS: dict[str, Kind] = {"numpy": "array", "tolist": "list", "item": "scalar"}
_MODULE_KINDS: dict[str, Kind] = {"np": "array", "numpy": "array", "torch": "tensor"}
_BUILTIN_KINDS: dict[str, Kind] = {
    "list": "list",
    "tuple": "list",
    "sorted": "list",
    "dict": "dict",
    "str": "str",
    "float": "scalar",
    "int": "scalar",
    "len": "scalar",
}
_IMPORT = re.compile(r"^[ \t]*(?:import|from)[ \t]+(torch|numpy)\b", re.MULTILINE)


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def ast_kind(node: ast.expr) -> Kind | None:
    """The kind of value ``node`` makes, from its shape alone."""
    if isinstance(node, (ast.List, ast.ListComp, ast.Tuple)):
        return "list"
    if isinstance(node, (ast.Dict, ast.DictComp)):
        return "dict"
    if isinstance(node, ast.JoinedStr):
        return "str"
    if isinstance(node, ast.Constant) and node.value is not None:
        return "str" if isinstance(node.value, (str, bytes)) else "scalar"
    if isinstance(node, ast.BinOp):  # np.ones(64) / 64: the operand that is not a number
        kinds = {ast_kind(node.left), ast_kind(node.right)} - {None, "scalar"}
        return kinds.pop() if len(kinds) == 1 else None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        if func.id in _BUILTIN_KINDS:
            return _BUILTIN_KINDS[func.id]
        return "tensor" if func.id == "Parameter" else None
    if isinstance(func, ast.Attribute):
        if func.attr in _METHOD_KINDS:
            return _METHOD_KINDS[func.attr]
        root = _root(func.value)
        if root in _MODULE_KINDS:  # np.zeros(...), np.random.rand(...), torch.nn.Parameter(...)
            return _MODULE_KINDS[root]
        if func.attr in VALUE_KEEPING_METHODS:  # after `numpy`, `tolist`: the same kind
            return ast_kind(func.value)
    return None


def numpy_only(source: str) -> bool:
    """True for a module that imports NumPy and never torch: its arrays carry no
    gradient (a module importing neither, such as a snippet, is not assumed either)."""
    imported = {match.group(1) for match in _IMPORT.finditer(source)}
    return imported == {"numpy"}
