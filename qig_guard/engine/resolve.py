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

from collections.abc import Iterator, Mapping, Sequence

import libcst as cst

from qig_guard.engine.traversal import FastBatchableVisitor

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


def target_names(target: cst.BaseExpression) -> Iterator[str]:
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from target_names(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from target_names(target.value)


class _BindingCollector:
    """Collect the names one scope binds, walking statements only.

    Expressions are not entered (a walrus target does not shadow an import
    here), nor nested functions, classes, lambdas or comprehensions: walking
    statements alone keeps this far cheaper than a libcst visit.
    """

    def __init__(self) -> None:
        self.bindings: dict[str, str | object] = {}
        self.deferred: set[str] = set()

    def _bind_target(self, target: cst.BaseExpression) -> None:
        for name in target_names(target):
            self.bindings[name] = _LOCAL

    def statements(self, body: Sequence[cst.CSTNode]) -> None:
        for statement in body:
            self.statement(statement)

    def block(self, block: cst.BaseSuite | None) -> None:
        if block is not None:
            self.statements(block.body)

    def statement(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self.small_statement(small)
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            self.bindings[node.name.value] = _LOCAL
        elif isinstance(node, cst.For):
            self._bind_target(node.target)
            self.block(node.body)
            self.block(node.orelse.body if node.orelse else None)
        elif isinstance(node, cst.While):
            self.block(node.body)
            self.block(node.orelse.body if node.orelse else None)
        elif isinstance(node, cst.If):
            self.block(node.body)
            if isinstance(node.orelse, cst.If):
                self.statement(node.orelse)
            elif node.orelse is not None:
                self.block(node.orelse.body)
        elif isinstance(node, cst.With):
            for item in node.items:
                if item.asname is not None:
                    self._bind_target(item.asname.name)
            self.block(node.body)
        elif isinstance(node, (cst.Try, cst.TryStar)):
            self.block(node.body)
            for handler in node.handlers:
                if handler.name is not None:
                    self._bind_target(handler.name.name)
                self.block(handler.body)
            self.block(node.orelse.body if node.orelse else None)
            self.block(node.finalbody.body if node.finalbody else None)
        elif isinstance(node, cst.Match):
            for case in node.cases:
                self.block(case.body)

    def small_statement(self, node: cst.BaseSmallStatement) -> None:
        if isinstance(node, cst.Assign):
            for target in node.targets:
                self._bind_target(target.target)
            reexported = _reexported_module(node)
            if reexported is not None:
                self.bindings[reexported[0]] = reexported[1]
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                self._bind_target(node.target)
        elif isinstance(node, cst.AugAssign):
            self._bind_target(node.target)
        elif isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted_name(alias.name) or ""
                if alias.asname is not None:
                    for name in target_names(alias.asname.name):
                        self.bindings[name] = full
                else:
                    root = full.split(".")[0]
                    self.bindings[root] = root
        elif isinstance(node, cst.ImportFrom):
            self.import_from(node)
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            self.deferred.update(item.name.value for item in node.names)

    def import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        module = _module_name(node.module, len(node.relative))
        for alias in node.names:
            imported = dotted_name(alias.name) or ""
            qualified = (
                f"{module}.{imported}" if module and not module.endswith(".") else module + imported
            )
            bound = alias.asname.name if alias.asname is not None else alias.name
            for name in target_names(bound):
                self.bindings[name] = qualified


# Modules that projects re-export through a module of their own (``torch = utils.torch``).
REEXPORTED_MODULES = {"torch": "torch", "np": "numpy", "numpy": "numpy", "pickle": "pickle"}


def _reexported_module(node: cst.Assign) -> tuple[str, str] | None:
    """``("torch", "torch")`` for ``torch = cc.torch``: a name bound to a well-known module
    that another module of the project imported (its attribute of the same name)."""
    if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
        return None
    value = node.value
    if not (isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name)):
        return None
    module = REEXPORTED_MODULES.get(value.attr.value)
    return (node.targets[0].target.value, module) if module else None


def _params(parameters: cst.Parameters) -> Iterator[str]:
    for param in (*parameters.posonly_params, *parameters.params, *parameters.kwonly_params):
        yield param.name.value
    for star in (parameters.star_arg, parameters.star_kwarg):
        if isinstance(star, cst.Param):
            yield star.name.value


class Scope:
    """One scope on the stack; bindings are collected on first lookup. ``hidden`` are
    names bound by statements the engine left out of the parse (see slicing)."""

    def __init__(self, node: ScopeNode, hidden: frozenset[str] = frozenset()) -> None:
        self.node = node
        self.hidden = hidden
        self._bindings: dict[str, str | object] | None = None

    @property
    def bindings(self) -> dict[str, str | object]:
        if self._bindings is None:
            collector = _BindingCollector()
            node = self.node
            if isinstance(node, cst.Module):
                collector.statements(node.body)
            elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                collector.block(node.body)
            if isinstance(node, (cst.FunctionDef, cst.Lambda)):
                for name in _params(node.params):
                    collector.bindings[name] = _LOCAL
            for name in self.hidden:
                collector.bindings.setdefault(name, _LOCAL)
            for name in collector.deferred:
                collector.bindings.pop(name, None)
            self._bindings = collector.bindings
        return self._bindings


class ScopeTracker(FastBatchableVisitor):
    """Keeps the scope stack during a batched traversal and resolves names.

    ``hidden`` maps ``()`` (the module) and ``("Name",)`` (the body of module-level
    class ``Name``) to the names that statements left out of the parse bind there."""

    def __init__(self, hidden: Mapping[tuple[str, ...], frozenset[str]] | None = None) -> None:
        super().__init__()
        self.scopes: list[Scope] = []
        self.hidden = hidden or {}

    def visit_Module(self, node: cst.Module) -> None:
        self.scopes.append(Scope(node, self.hidden.get((), frozenset())))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        owner = (node.name.value,) if len(self.scopes) == 1 else None
        hidden = self.hidden.get(owner, frozenset()) if owner else frozenset()
        self.scopes.append(Scope(node, hidden))

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
