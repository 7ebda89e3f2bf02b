"""Scope-aware name resolution, cheaper than libcst's ScopeProvider.

The :class:`ScopeTracker` runs first in every batched traversal and keeps
the stack of enclosing modules, classes, functions and lambdas. Each scope's
bindings are collected lazily, the first time a name is looked up in it,
following Python's rules: a name bound anywhere in a function is local to
all of it, class bodies do not enclose the functions defined in them, and
``global``/``nonlocal`` declarations defer to the outer binding.

A binding made by an import maps to its qualified name (``from torch import
save as s`` binds ``s`` to ``torch.save``); any other binding shadows imports
and resolves to ``None``. Names bound nowhere resolve to themselves, so a
snippet that uses ``torch.save`` without importing torch still reads as
``torch.save``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import libcst as cst

ScopeNode = cst.Module | cst.ClassDef | cst.FunctionDef | cst.Lambda

_LOCAL = object()  # marks a non-import binding while collecting


def dotted_name(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a chain of Name/Attribute nodes, else ``None``."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def _module_name(node: cst.BaseExpression | None, dots: int) -> str:
    base = dotted_name(node) if node is not None else ""
    return "." * dots + (base or "")


def _target_names(target: cst.BaseExpression) -> Iterator[str]:
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _target_names(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _target_names(target.value)


class _BindingCollector(cst.CSTVisitor):
    """Collect the names one scope binds, without entering nested scopes."""

    def __init__(self) -> None:
        self.bindings: dict[str, str | object] = {}
        self.deferred: set[str] = set()

    def _bind(self, name: str, value: str | object = _LOCAL) -> None:
        self.bindings[name] = value

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self._bind(node.name.value)
        for decorator in node.decorators:
            decorator.visit(self)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self._bind(node.name.value)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_CompFor(self, node: cst.CompFor) -> bool:
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            for name in _target_names(target.target):
                self._bind(name)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            for name in _target_names(node.target):
                self._bind(name)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        for name in _target_names(node.target):
            self._bind(name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        for name in _target_names(node.target):
            self._bind(name)

    def visit_For(self, node: cst.For) -> None:
        for name in _target_names(node.target):
            self._bind(name)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            for name in _target_names(node.asname.name):
                self._bind(name)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            for name in _target_names(node.name.name):
                self._bind(name)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted_name(alias.name) or ""
            if alias.asname is not None:
                for name in _target_names(alias.asname.name):
                    self._bind(name, full)
            else:
                root = full.split(".")[0]
                self._bind(root, root)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        module = _module_name(node.module, len(node.relative))
        for alias in node.names:
            imported = dotted_name(alias.name) or ""
            qualified = (
                f"{module}.{imported}"
                if module and not module.endswith(".")
                else (module + imported)
            )
            bound = alias.asname.name if alias.asname is not None else alias.name
            for name in _target_names(bound):  # type: ignore[arg-type]
                self._bind(name, qualified)

    def visit_Global(self, node: cst.Global) -> None:
        self.deferred.update(item.name.value for item in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self.deferred.update(item.name.value for item in node.names)


def _params(parameters: cst.Parameters) -> Iterator[str]:
    for param in (*parameters.posonly_params, *parameters.params, *parameters.kwonly_params):
        yield param.name.value
    for star in (parameters.star_arg, parameters.star_kwarg):
        if isinstance(star, cst.Param):
            yield star.name.value


class Scope:
    """One scope on the stack; bindings are collected on first lookup."""

    def __init__(self, node: ScopeNode) -> None:
        self.node = node
        self._bindings: dict[str, str | object] | None = None

    @property
    def bindings(self) -> dict[str, str | object]:
        if self._bindings is None:
            collector = _BindingCollector()
            node = self.node
            if isinstance(node, cst.Module):
                for statement in node.body:
                    statement.visit(collector)
            elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                node.body.visit(collector)
            if isinstance(node, (cst.FunctionDef, cst.Lambda)):
                for name in _params(node.params):
                    collector.bindings[name] = _LOCAL
            for name in collector.deferred:
                collector.bindings.pop(name, None)
            self._bindings = collector.bindings
        return self._bindings


class ScopeTracker(cst.BatchableCSTVisitor):
    """Keeps the scope stack during a batched traversal and resolves names."""

    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[Scope] = []

    def visit_Module(self, node: cst.Module) -> None:
        self.scopes.append(Scope(node))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.scopes.append(Scope(node))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.scopes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scopes.append(Scope(node))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.scopes.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self.scopes.append(Scope(node))

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self.scopes.pop()

    @property
    def functions(self) -> Sequence[cst.FunctionDef]:
        """Enclosing function definitions, outermost first."""
        return [s.node for s in self.scopes if isinstance(s.node, cst.FunctionDef)]

    @property
    def classes(self) -> Sequence[cst.ClassDef]:
        """Enclosing class definitions, outermost first."""
        return [s.node for s in self.scopes if isinstance(s.node, cst.ClassDef)]

    def lookup(self, name: str) -> str | None:
        """The qualified name ``name`` is bound to here (see module docstring)."""
        innermost = len(self.scopes) - 1
        for index in range(innermost, -1, -1):
            scope = self.scopes[index]
            if isinstance(scope.node, cst.ClassDef) and index != innermost:
                continue
            binding = scope.bindings.get(name)
            if binding is not None:
                return binding if isinstance(binding, str) else None
        return name

    def qualified_name(self, node: cst.CSTNode) -> str | None:
        """Resolve a Name/Attribute chain to a qualified name, or ``None``."""
        dotted = dotted_name(node)
        if dotted is None:
            return None
        root, _, rest = dotted.partition(".")
        resolved = self.lookup(root)
        if resolved is None:
            return None
        return f"{resolved}.{rest}" if rest else resolved
