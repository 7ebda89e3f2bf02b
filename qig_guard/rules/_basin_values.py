"""Which expressions hold a basin: by name, by flow within the enclosing function, and by
what the project index says functions return and attributes are assigned.

A *basin* is the identity vector itself: a name matching ``basin-names``
(``target_basin``, ``self.basin``, ``ckpt["basin"]``) that does not name
something about a basin (``basin_path``, ``basin_dim``, ``basin_loss``) and is
not a table of many basins (``basin-tables``: ``observer_basins``). Indexing
or iterating a table gives a basin. Value-keeping calls (``.detach()``,
``.cpu().numpy().tolist()``, ``torch.tensor(...)``, ``basin / basin.norm()``)
keep a basin a basin; a local name is a basin when every value assigned to
it in the function is one.
"""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.engine.traversal import children
from qig_guard.facts.torch_api import VALUE_KEEPING_ATTRIBUTES
from qig_guard.facts.vocabulary import COMPARISON_WORDS, NOT_A_VECTOR
from qig_guard.facts.words import matches_any, words
from qig_guard.rules.base import FileContext, Rule
from qig_guard.rules.gates import standalone


class Kind(enum.Enum):
    """What an expression holds, as far as the basin rules care."""

    BASIN = "basin"
    TABLE = "table"
    PENDING = "pending"  # internal: a name whose kind is being resolved (a cycle)


# A name bound with ``as`` (an import alias, a ``with`` or ``except`` target).
_AS_NAME = re.compile(r"as[\s\\]+([A-Za-z_]\w*)")  # see gates.standalone
# Words that make a basin-ish identifier a collection of basins: ``basin_list``.
_COLLECTION_WORDS = frozenset({"list", "lists", "buffer", "queue", "cache", "pool", "memory"})
# fmt: off
_KEEP_METHODS = frozenset({
    "detach", "clone", "cpu", "cuda", "to", "numpy", "tolist", "float", "double", "half",
    "squeeze", "unsqueeze", "view", "reshape", "flatten", "ravel", "contiguous", "copy",
    "astype", "requires_grad_", "detach_", "type_as"
})
# fmt: on
_WRAPPERS = frozenset(
    {
        "torch.tensor",
        "torch.as_tensor",
        "torch.from_numpy",
        "torch.Tensor",
        "torch.FloatTensor",
        "torch.clone",
        "torch.nn.functional.normalize",
        "numpy.array",
        "numpy.asarray",
        "numpy.asanyarray",
        "numpy.copy",
        "list",
        "tuple",
    }
)
_STACKS = frozenset({"torch.stack", "torch.vstack", "numpy.stack", "numpy.vstack", "numpy.array"})
_CONSTRUCTOR_NAMES = frozenset(q.rsplit(".", 1)[-1] for q in _WRAPPERS | _STACKS)


class _Opaque:
    """A binding whose value the flow does not follow (parameter, import, ``with``...)."""


OPAQUE = _Opaque()
PARAM_BASIN = _Opaque()  # a parameter of ``basin_distance(a, b)``-like functions


@dataclass(frozen=True)
class Element:
    """The loop variable of ``for x in iterable`` (or a comprehension)."""

    iterable: cst.BaseExpression


Value = cst.BaseExpression | _Opaque | Element
FlowTest = Callable[[Value], bool]
_Comprehension = cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp
_BRANCHES = (
    cst.BaseCompoundStatement,
    cst.Else,
    cst.Finally,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.MatchCase,
)


@dataclass
class Flow:
    """The values bound to each local name of one function (or the module)."""

    values: defaultdict[str, list[Value]] = field(default_factory=lambda: defaultdict(list))
    mutated: set[str] = field(default_factory=set)


class _FlowCollector:
    """Collects a scope's bindings statement by statement, without walking expressions
    (comprehension variables are tracked during the traversal instead)."""

    def __init__(self) -> None:
        self.flow = Flow()

    def block(self, statements: Sequence[cst.CSTNode]) -> None:
        for statement in statements:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    self._small(small)
            elif isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
                self.flow.values[statement.name.value].append(OPAQUE)
            else:
                self._compound(statement)

    def suite(self, node: cst.BaseSuite) -> None:
        if isinstance(node, cst.IndentedBlock):
            self.block(node.body)
        elif isinstance(node, cst.SimpleStatementSuite):
            for small in node.body:
                self._small(small)

    def _compound(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.For):
            self._bind(node.target, Element(node.iter))
        elif isinstance(node, cst.With):
            for item in node.items:
                if item.asname is not None:
                    self._bind(item.asname.name, OPAQUE)
        elif isinstance(node, (cst.ExceptHandler, cst.ExceptStarHandler)) and node.name:
            self._bind(node.name.name, OPAQUE)
        for child in children(node):
            if isinstance(child, cst.BaseSuite):
                self.suite(child)
            elif isinstance(child, _BRANCHES):
                self._compound(child)

    def _small(self, node: cst.BaseSmallStatement) -> None:
        if isinstance(node, cst.Assign):
            for target in node.targets:
                self._bind(target.target, node.value)
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            self._bind(node.target, node.value)
        elif isinstance(node, cst.AugAssign):
            self._bind(node.target, OPAQUE)
        elif isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(
            node.names, cst.ImportStar
        ):
            for alias in node.names:
                bound = dotted_name(alias.asname.name if alias.asname else alias.name)
                if bound is not None:
                    self.flow.values[bound.split(".")[0]].append(OPAQUE)
        elif isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
            func = node.value.func
            if (
                isinstance(func, cst.Attribute)
                and isinstance(func.value, cst.Name)
                and func.attr.value in {"update", "setdefault", "pop", "__setitem__", "clear"}
            ):
                self.flow.mutated.add(func.value.value)

    def _bind(self, target: cst.BaseExpression, value: Value) -> None:
        if isinstance(target, cst.Name):
            self.flow.values[target.value].append(value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = [e.value for e in target.elements]
            values = _unpack(value, len(elements))
            for element, item in zip(elements, values, strict=True):
                self._bind(element, item)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value, OPAQUE)
        elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
            self.flow.mutated.add(target.value.value)


def _unpack(value: Value, count: int) -> list[Value]:
    """The items of ``a, b = x, y``; ``enumerate``/``zip``/``.items()`` loops; else opaque."""
    if (
        isinstance(value, (cst.Tuple, cst.List))
        and len(value.elements) == count
        and not any(isinstance(e, cst.StarredElement) for e in value.elements)
    ):
        return [e.value for e in value.elements]
    if isinstance(value, Element) and isinstance(value.iterable, cst.Call):
        call = value.iterable
        func = call.func
        args = [a.value for a in call.args if a.keyword is None and not a.star]
        if isinstance(func, cst.Name) and func.value == "enumerate" and count == 2 and args:
            return [OPAQUE, Element(args[0])]
        if isinstance(func, cst.Name) and func.value == "zip" and len(args) == count:
            return [Element(arg) for arg in args]
        if isinstance(func, cst.Attribute) and func.attr.value == "items" and count == 2:
            return [OPAQUE, Element(func.value)]
    return [OPAQUE] * count


def _params(function: cst.FunctionDef) -> list[cst.Param]:
    p = function.params
    return [*p.posonly_params, *p.params, *p.kwonly_params] + [
        s for s in (p.star_arg, p.star_kwarg) if isinstance(s, cst.Param)
    ]


def call_args(call: cst.Call) -> tuple[list[cst.BaseExpression], dict[str, cst.BaseExpression]]:
    """Plain positional arguments (up to the first starred one) and keyword arguments."""
    positional: list[cst.BaseExpression] = []
    keywords: dict[str, cst.BaseExpression] = {}
    starred = False
    for arg in call.args:
        if arg.keyword is not None:
            keywords[arg.keyword.value] = arg.value
        elif arg.star:
            starred = True
        elif not starred:
            positional.append(arg.value)
    return positional, keywords


def string_value(node: cst.BaseExpression) -> str | None:
    """The value of a plain (non-f, non-concatenated) string literal."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def dict_entries(
    node: cst.BaseExpression,
) -> list[tuple[str | None, cst.BaseExpression | None]] | None:
    """``(key, value)`` pairs of a dict display or ``dict(k=v)`` call; key ``None``
    for a non-string key, value ``None`` for a ``**spread``; ``None`` if not a dict."""
    if isinstance(node, cst.Dict):
        entries: list[tuple[str | None, cst.BaseExpression | None]] = []
        for element in node.elements:
            if isinstance(element, cst.DictElement):
                entries.append((string_value(element.key), element.value))
            else:
                entries.append((None, None))
        return entries
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "dict":
        if any(a.keyword is None and a.star != "**" for a in node.args):
            return None
        return [
            (a.keyword.value if a.keyword else None, None if a.star else a.value) for a in node.args
        ]
    return None


class BasinValues:
    """Answers "is this a basin?" for one rule while it visits one file."""

    def __init__(self, context: FileContext) -> None:
        self.context = context
        self.config = context.config
        self._flows: dict[int, Flow] = {}
        self._comprehensions: list[dict[str, list[Value]]] = []
        self._aliases: frozenset[str] | None = None
        self._resolving: set[tuple[int, str]] = set()
        self._following: set[tuple[int, str, str]] = set()

    # -- names -------------------------------------------------------------
    def kind_of_name(self, identifier: str) -> Kind | None:
        """The kind an identifier's name alone says (``None``: not a basin by name)."""
        if NOT_A_VECTOR.intersection(words(identifier)):
            return None
        if matches_any(identifier, self.config.basin_owners):
            return None
        if matches_any(identifier, self.config.basin_tables):
            return Kind.TABLE
        if matches_any(identifier, self.config.basin_names):
            return Kind.TABLE if _COLLECTION_WORDS.intersection(words(identifier)) else Kind.BASIN
        return None

    def key_kind(self, key: str) -> Kind | None:
        """The kind a mapping key says: ``"basin_matcher.target_basin"`` is a basin."""
        last = key.rsplit(".", 1)[-1]
        return self.kind_of_name(last) if last.isidentifier() else None

    # -- calls -------------------------------------------------------------
    def call_name(self, func: cst.BaseExpression, last_names: frozenset[str]) -> str | None:
        """The qualified name of a callee whose last name is in ``last_names`` or that is
        an import alias (``vn`` after ``from torch.linalg import vector_norm as vn``);
        other callees are not resolved, which keeps the common case cheap."""
        if isinstance(func, cst.Name):
            if func.value not in last_names and func.value not in self.aliases:
                return None
        elif not isinstance(func, cst.Attribute) or func.attr.value not in last_names:
            return None
        return self.context.qualified_name(func)

    @property
    def aliases(self) -> frozenset[str]:
        """Names bound with ``as`` anywhere in the file (a cheap superset of import aliases)."""
        if self._aliases is None:
            source = self.context.source
            self._aliases = frozenset(m.group(1) for m in standalone(_AS_NAME, source))
        return self._aliases

    # -- flow --------------------------------------------------------------
    def enter_comprehension(self, node: _Comprehension) -> None:
        """Bind a comprehension's loop variables while its body is visited."""
        bound = _FlowCollector()
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            bound._bind(clause.target, Element(clause.iter))
            clause = clause.inner_for_in
        self._comprehensions.append(dict(bound.flow.values))

    def leave_comprehension(self) -> None:
        self._comprehensions.pop()

    def flow(self) -> tuple[cst.CSTNode, Flow]:
        """The innermost function's flow (the module's outside functions)."""
        functions = self.context.scopes.functions
        scope: cst.CSTNode = functions[-1] if functions else self.context.module
        return scope, self._flow_for(scope)

    def _flow_for(self, scope: cst.CSTNode) -> Flow:
        flow = self._flows.get(id(scope))
        if flow is None:
            collector = _FlowCollector()
            if isinstance(scope, cst.FunctionDef):
                collector.suite(scope.body)
                basin_params = self._compares_basins(scope.name.value)
                positional = 0
                for param in _params(scope):
                    name = param.name.value
                    is_basin = (
                        basin_params
                        and name not in {"self", "cls"}
                        and param.default is None
                        and positional < 2
                    )
                    if basin_params and name not in {"self", "cls"}:
                        positional += 1
                    collector.flow.values[name].append(PARAM_BASIN if is_basin else OPAQUE)
            else:
                collector.block(self.context.module.body)
            flow = self._flows[id(scope)] = collector.flow
        return flow

    def _compares_basins(self, function_name: str) -> bool:
        """``basin_distance(a, b)``: a function comparing two basins by its name."""
        return matches_any(function_name, self.config.basin_names) and bool(
            COMPARISON_WORDS.intersection(words(function_name))
        )

    def bound_values(self, name: str) -> list[Value] | None:
        """Every value bound to local ``name`` (module-level if not local), or ``None``."""
        for bound in reversed(self._comprehensions):
            if name in bound:
                return bound[name]
        scope, flow = self.flow()
        values = flow.values.get(name)
        if values is None and isinstance(scope, cst.FunctionDef):
            values = self._flow_for(self.context.module).values.get(name)
        return values or None

    def is_mutated(self, name: str) -> bool:
        return name in self.flow()[1].mutated

    def follow(self, name: str, test: FlowTest) -> bool:
        """True when every value bound to ``name`` passes ``test``; a value that leads
        back to ``name`` itself (``x = x.cpu()``) neither passes nor fails."""
        values = self.bound_values(name)
        key = (id(self.flow()[0]), name, getattr(test, "__name__", ""))
        if values is None:
            return False
        if key in self._following:
            return True
        if any(isinstance(v, _Opaque) and v is not PARAM_BASIN for v in values):
            return False
        self._following.add(key)
        try:
            return all(test(v) for v in values)
        finally:
            self._following.discard(key)

    def _bound_kind(self, name: str) -> Kind | None:
        """The one kind of every value bound to ``name`` (``PENDING`` inside a cycle)."""
        values = self.bound_values(name)
        key = (id(self.flow()[0]), name)
        if values is None:
            return None
        if key in self._resolving:
            return Kind.PENDING
        self._resolving.add(key)
        try:
            kinds = {self.kind(v) for v in values}
        finally:
            self._resolving.discard(key)
        if kinds == {Kind.PENDING}:
            return Kind.PENDING if self._resolving else None
        kinds.discard(Kind.PENDING)
        return kinds.pop() if len(kinds) == 1 else None

    def single_value(self, name: str) -> cst.BaseExpression | None:
        """The one expression assigned to ``name``, if it is assigned exactly once."""
        values = self.bound_values(name)
        if values and len(values) == 1 and isinstance(values[0], cst.BaseExpression):
            return values[0]
        return None

    # -- kinds -------------------------------------------------------------
    def kind(self, node: Value) -> Kind | None:
        """What ``node`` holds: a basin, a table of basins, or neither (``None``)."""
        if node is PARAM_BASIN:
            return Kind.BASIN
        if isinstance(node, _Opaque):
            return None
        if isinstance(node, Element):
            return Kind.BASIN if self.kind(node.iterable) is Kind.TABLE else None
        if isinstance(node, cst.Name):
            by_name = self.kind_of_name(node.value)
            if by_name is not None:
                return by_name
            return self._bound_kind(node.value)
        if isinstance(node, cst.Attribute):
            if node.attr.value in VALUE_KEEPING_ATTRIBUTES:
                return self.kind(node.value)
            by_name = self.kind_of_name(node.attr.value)
            if by_name is None and self.context.project.holds_basin(node.attr.value):
                return Kind.BASIN  # `self.identity = extract_signature(model)` elsewhere
            return by_name
        if isinstance(node, cst.Subscript):
            return self._subscript_kind(node)
        if isinstance(node, cst.Call):
            return self._call_kind(node)
        if isinstance(node, cst.BinaryOperation):
            return self._binary_kind(node)
        if isinstance(node, cst.UnaryOperation):
            return self.kind(node.expression)
        if isinstance(node, cst.IfExp):
            body = self.kind(node.body)
            return body if body is self.kind(node.orelse) else None
        return None

    def is_basin(self, node: Value) -> bool:
        return self.kind(node) is Kind.BASIN

    def is_basin_or_table(self, node: Value) -> bool:
        return self.kind(node) in (Kind.BASIN, Kind.TABLE)

    def _subscript_kind(self, node: cst.Subscript) -> Kind | None:
        if len(node.slice) != 1:
            return None
        index = node.slice[0].slice
        if not isinstance(index, cst.Index):
            return self.kind(node.value)
        key = string_value(index.value)
        if key is not None:
            return self.key_kind(key)
        return Kind.BASIN if self.kind(node.value) is Kind.TABLE else None

    def _call_kind(self, node: cst.Call) -> Kind | None:
        func = node.func
        positional, _ = call_args(node)
        qualified = self.call_name(func, _CONSTRUCTOR_NAMES)
        if isinstance(func, cst.Attribute) and qualified not in _WRAPPERS | _STACKS:
            if func.attr.value in _KEEP_METHODS:
                return self.kind(func.value)
            if func.attr.value == "values" and self.kind(func.value) is Kind.TABLE:
                return Kind.TABLE
        if qualified in _STACKS and positional:
            first = positional[0]
            if isinstance(first, (cst.List, cst.Tuple)) and first.elements:
                if all(self.is_basin(e.value) for e in first.elements):
                    return Kind.TABLE
            elif self.kind(first) is Kind.TABLE:
                return Kind.TABLE
        if qualified in _WRAPPERS:
            return self.kind(positional[0]) if positional else None
        name = dotted_name(func)
        last = name.rsplit(".", 1)[-1] if name else ""
        if not last or last[0].isupper():
            return None  # ``BasinHead(d)`` constructs a module, not a vector
        by_name = self.kind_of_name(last)
        if by_name is None and self.context.project.returns_basin(last):
            return Kind.BASIN  # the project's function returns a basin, whatever its name
        if by_name is None and positional and self.context.project.keeps_argument(last):
            return self.kind(positional[0])  # a normaliser of the project: basin in, basin out
        return by_name

    def _binary_kind(self, node: cst.BinaryOperation) -> Kind | None:
        if not isinstance(node.operator, (cst.Add, cst.Subtract, cst.Multiply, cst.Divide)):
            return None
        left, right = self.kind(node.left), self.kind(node.right)
        if isinstance(node.operator, cst.Subtract) and left is Kind.BASIN and right is Kind.BASIN:
            return None  # a difference of two basins is a displacement, not a basin
        if Kind.TABLE in (left, right):
            return Kind.TABLE
        return Kind.BASIN if Kind.BASIN in (left, right) else None

    # -- dicts -------------------------------------------------------------
    def dict_of(
        self, node: cst.BaseExpression
    ) -> tuple[list[tuple[str | None, cst.BaseExpression | None]], bool] | None:
        """A dict display (or a local name bound once to one) and whether it is
        mutated afterwards (``d["k"] = v``, ``d.update(...)``)."""
        entries = dict_entries(node)
        if entries is not None:
            return entries, False
        if isinstance(node, cst.Name):
            value = self.single_value(node.value)
            entries = dict_entries(value) if value is not None else None
            if entries is not None:
                return entries, self.is_mutated(node.value)
        return None

    def holds_basin(self, entries: Sequence[tuple[str | None, cst.BaseExpression | None]]) -> bool:
        """A dict whose ``"basin"`` key or one of whose values is a basin."""
        return any(
            value is not None
            and (
                self.is_basin(value)
                or (key is not None and self.key_kind(key) is Kind.BASIN and _may_be_vector(value))
            )
            for key, value in entries
        )


def _may_be_vector(value: cst.BaseExpression) -> bool:
    """False for literals, names about a basin and values of a kind that is no vector:
    ``{"basin": "b.json"}``, ``args.basin_path``, ``{"basin_tokens": {str(k): v ...}}``."""
    if isinstance(value, (cst.BaseString, cst.BaseNumber, cst.Dict, cst.DictComp)):
        return False
    if isinstance(value, cst.Call) and dotted_name(value.func) in _NOT_VECTOR_CALLS:
        return False
    name = dotted_name(value)
    if name is None:
        return True
    return name not in {"None", "True", "False"} and not NOT_A_VECTOR.intersection(words(name))


_NOT_VECTOR_CALLS = frozenset({"str", "repr", "dict", "len", "int", "float", "bool", "hash"})


class BasinRule(Rule):
    """A rule that asks :class:`BasinValues`; tracks comprehension variables for it."""

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self.values = BasinValues(context)

    def _enter_comprehension(self, node: _Comprehension) -> None:
        self.values.enter_comprehension(node)

    def _leave_comprehension(self, original_node: _Comprehension) -> None:
        self.values.leave_comprehension()

    # Each kind of comprehension binds its loop variables while its body is visited.
    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _enter_comprehension
    leave_ListComp = leave_SetComp = leave_GeneratorExp = leave_DictComp = _leave_comprehension
