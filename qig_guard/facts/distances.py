"""Facts of distance code: which library functions measure or make up a distance, which
functions compare two basins, which normalise one.

- A Fisher-named distance function (``fisher_distance_np(a, b)``, ``_fisher_rao_distance``)
  compares two basins: its first two parameters are basins; so does a distance-named
  function (``_dist(x, y)``) that some call of the same file passes a basin-named value.
- A same-file helper (or method of the class) that returns its first parameter divided
  by a norm, or passed to ``normalize``, keeps its argument's kind.
- Values bound after the expression being checked (``before``) don't reach it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.engine.traversal import children
from qig_guard.facts.torch_api import VALUE_KEEPING_METHODS
from qig_guard.facts.vocabulary import DISTANCE_WORDS
from qig_guard.facts.words import words
from qig_guard.rules._basin_values import BasinValues, Kind, Value, call_args
from qig_guard.rules.base import FileContext

FISHER_WORDS = frozenset({"fisher", "rao", "bures", "geodesic"})

# -- the functions of torch, NumPy, SciPy, scikit-learn and math that distances use ----

NORM_FUNCTIONS = frozenset(
    {"torch.norm", "torch.functional.norm", "torch.linalg.norm", "torch.linalg.vector_norm"}
    | {"numpy.linalg.norm", "scipy.linalg.norm"}
)
"""Functions that compute a vector's norm (Euclidean unless given another order)."""
PAIRWISE_DISTANCES = {
    "torch.dist": True,
    "torch.cdist": True,
    "torch.nn.functional.pairwise_distance": True,
    "torch.nn.functional.mse_loss": False,
    "torch.nn.functional.cosine_similarity": False,
    "torch.pairwise_distance": True,
    "torch.cosine_similarity": False,
    "math.dist": False,
    "scipy.spatial.distance.euclidean": False,
    "scipy.spatial.distance.sqeuclidean": False,
    "scipy.spatial.distance.cosine": False,
    "sklearn.metrics.pairwise.cosine_similarity": False,
    "sklearn.metrics.pairwise.euclidean_distances": False,
}
"""Functions that compare two operands; the value says whether a third argument ``p`` may
make the comparison non-Euclidean."""
COSINE_FUNCTIONS = frozenset(
    {"torch.nn.functional.cosine_similarity", "torch.cosine_similarity"}
    | {"sklearn.metrics.pairwise.cosine_similarity"}
    | {"torch.dot", "numpy.dot", "torch.inner", "numpy.inner"}
)
"""Functions whose value is a cosine similarity, or a dot product (one of unit vectors)."""
METRIC_DISTANCES = {
    "scipy.spatial.distance.cdist": 2,
    "scipy.spatial.distance.pdist": 1,
    "sklearn.metrics.pairwise_distances": 2,
    "sklearn.metrics.pairwise.pairwise_distances": 2,
}
"""Functions taking a ``metric`` (at this position) that is Euclidean when not given."""
EUCLIDEAN_METRICS = frozenset({"euclidean", "sqeuclidean", "cosine", "l2"})
"""``metric`` values of those that measure a Euclidean or cosine distance."""
DISTANCE_MODULES = frozenset(
    {"torch.nn.MSELoss", "torch.nn.PairwiseDistance", "torch.nn.CosineSimilarity"}
)
"""Torch modules that compute a Euclidean or cosine distance (``nn.MSELoss()``)."""
SQRT_FUNCTIONS = frozenset({"torch.sqrt", "numpy.sqrt", "math.sqrt"})
"""Square roots."""
SUM_FUNCTIONS = frozenset({"torch.sum", "torch.mean", "numpy.sum", "numpy.mean", "sum"})
"""Sums and means (of squares, in a hand-written norm)."""
SQUARE_FUNCTIONS = frozenset({"torch.square", "numpy.square", "torch.pow", "numpy.power"})
"""Squares and powers."""
ONES_FUNCTIONS = frozenset({"torch.ones", "torch.ones_like", "numpy.ones", "numpy.ones_like"})
"""Constructors of all-ones tensors and arrays (a uniform Fisher diagonal)."""
ABS_FUNCTIONS = frozenset({"abs", "numpy.abs", "numpy.absolute", "torch.abs"})
"""Absolute values."""
ARCCOS_FUNCTIONS = frozenset({"numpy.arccos", "torch.acos", "torch.arccos", "math.acos"})
"""Arc cosines (an angle between vectors)."""
CLIP_FUNCTIONS = frozenset({"numpy.clip", "torch.clamp", "torch.clip"})
"""Clips and clamps."""
DOT_FUNCTIONS = frozenset(
    {"torch.dot", "torch.inner", "torch.vdot", "torch.matmul"}
    | {"numpy.dot", "numpy.inner", "numpy.vdot", "numpy.matmul"}
)
"""Dot and matrix products."""
NORMALIZE = "torch.nn.functional.normalize"
"""The function that divides a vector by its norm."""
DISTANCE_FUNCTION_NAMES = frozenset(
    q.rsplit(".", 1)[-1]
    for q in (
        *NORM_FUNCTIONS,
        *PAIRWISE_DISTANCES,
        *METRIC_DISTANCES,
        *COSINE_FUNCTIONS,
        *DISTANCE_MODULES,
        *SQRT_FUNCTIONS,
        *SUM_FUNCTIONS,
        *SQUARE_FUNCTIONS,
        *ONES_FUNCTIONS,
        *ABS_FUNCTIONS,
        *ARCCOS_FUNCTIONS,
        *CLIP_FUNCTIONS,
        *DOT_FUNCTIONS,
        NORMALIZE,
    )
)
"""The last names of all the functions above (``norm``, ``cdist``, ``sqrt``)."""


def compares_by_name(function_name: str) -> bool:
    """``fisher_distance``, ``_fisher_rao_distance``, ``bures_dist``: a distance between basins."""
    found = set(words(function_name))
    return bool(found & FISHER_WORDS and found & DISTANCE_WORDS)


def _returns(function: cst.FunctionDef) -> list[cst.BaseExpression | None]:
    """The values of the function's own ``return`` statements (not nested functions')."""
    found: list[cst.BaseExpression | None] = []
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Return):
            found.append(node.value)
        elif not isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            stack.extend(children(node))
    return found


def _first_parameter(function: cst.FunctionDef) -> str | None:
    names = [p.name.value for p in (*function.params.posonly_params, *function.params.params)]
    names = [n for n in names if n not in {"self", "cls"}]
    return names[0] if names else None


class DistanceValues(BasinValues):
    """:class:`BasinValues` that also knows three facts of distance code.

    - A Fisher-named distance function (``fisher_distance_np(a, b)``,
      ``_fisher_rao_distance``) compares two basins: its first two parameters are basins.
    - A same-file helper that returns its first parameter divided by a norm
      (``normalize(v)``) keeps its argument's kind.
    - Values bound after the expression being checked (``before``) don't reach it.
    """

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self.before: cst.CSTNode | None = None
        self._normalisers: dict[int, bool] = {}
        self._calls: dict[str, list[cst.Call]] | None = None

    def _compares_basins(self, function_name: str) -> bool:
        return (
            super()._compares_basins(function_name)
            or compares_by_name(function_name)
            or (
                bool(DISTANCE_WORDS.intersection(words(function_name)))
                and self._called_with_basins(function_name)
            )
        )

    def _called_with_basins(self, function_name: str) -> bool:
        """Some call of ``function_name(...)`` or ``self.function_name(...)`` in this file
        passes a basin-named value among its first two arguments."""
        if self._calls is None:
            self._calls = {}
            stack: list[cst.CSTNode] = [self.context.module]
            while stack:
                node = stack.pop()
                if isinstance(node, cst.Call):
                    func = node.func
                    if isinstance(func, cst.Name):
                        self._calls.setdefault(func.value, []).append(node)
                    elif isinstance(func, cst.Attribute) and dotted_name(func.value) in {
                        "self",
                        "cls",
                    }:
                        self._calls.setdefault(func.attr.value, []).append(node)
                stack.extend(children(node))
        return any(
            self._named_basin(argument)
            for call in self._calls.get(function_name, ())
            for argument in call_args(call)[0][:2]
        )

    def _named_basin(self, node: cst.BaseExpression) -> bool:
        """A basin by its name alone: ``target_basin``, ``self.basin.detach()``, ``d["basin"]``."""
        if isinstance(node, cst.Name):
            return self.kind_of_name(node.value) is Kind.BASIN
        if isinstance(node, cst.Attribute):
            return self.kind_of_name(node.attr.value) is Kind.BASIN
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            return node.func.attr.value in VALUE_KEEPING_METHODS and self._named_basin(
                node.func.value
            )
        if isinstance(node, cst.Subscript):
            return self.kind(node) is Kind.BASIN
        return False

    def bound_values(self, name: str) -> list[Value] | None:
        values = super().bound_values(name)
        if values is None or len(values) < 2 or self.before is None:
            return values
        scope, _ = self.flow()  # the values and the expression are all within it
        limit = self.context.order(self.before, scope)[0]
        reaching = [
            v
            for v in values
            if not isinstance(v, cst.BaseExpression) or self.context.order(v, scope)[0] < limit
        ]
        return reaching or None

    def _call_kind(self, node: cst.Call) -> Kind | None:
        found = super()._call_kind(node)
        if found is None and self.is_normaliser(node.func):
            positional, _ = call_args(node)
            return self.kind(positional[0]) if positional else None
        return found

    def is_normaliser(self, func: cst.BaseExpression) -> bool:
        """``func`` names a function of this file (or a method of this class) that
        returns its first parameter divided by a norm or passed to ``normalize``."""
        function = self._local_function(func)
        if function is None:
            return False
        known = self._normalisers.get(id(function))
        if known is None:
            known = self._normalisers[id(function)] = _normalises(function)
        return known

    def _local_function(self, func: cst.BaseExpression) -> cst.FunctionDef | None:
        if isinstance(func, cst.Name):
            body: Sequence[cst.CSTNode] = self.context.module.body
            name = func.value
        elif (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value in {"self", "cls"}
            and self.context.scopes.classes
        ):
            body = self.context.scopes.classes[-1].body.body
            name = func.attr.value
        else:
            return None
        for statement in body:
            if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
                return statement
        return None


def _normalises(function: cst.FunctionDef) -> bool:
    first = _first_parameter(function)
    returns = _returns(function)
    if first is None or not returns:
        return False
    norms = {
        target.target.value
        for line in function.body.body
        if isinstance(line, cst.SimpleStatementLine)
        for small in line.body
        if isinstance(small, cst.Assign)
        for target in small.targets
        if isinstance(target.target, cst.Name) and _mentions_norm(small.value)
    }

    def scaled(value: cst.BaseExpression | None) -> bool:
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Divide):
            root = value.left
            while isinstance(root, cst.Call) and isinstance(root.func, cst.Attribute):
                root = root.func.value
            divisor = value.right
            named = {n.value for n in _names_in(divisor)}
            return (
                isinstance(root, cst.Name)
                and root.value == first
                and (_mentions_norm(divisor) or bool(named & norms))
            )
        if isinstance(value, cst.Call):
            name = dotted_name(value.func) or ""
            positional, _ = call_args(value)
            return (
                name.rsplit(".", 1)[-1] == "normalize"
                and bool(positional)
                and isinstance(positional[0], cst.Name)
                and positional[0].value == first
            )
        return False

    return all(scaled(value) for value in returns)


def _names_in(node: cst.CSTNode) -> Iterator[cst.Name]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            yield current
        stack.extend(children(current))


def _mentions_norm(node: cst.CSTNode) -> bool:
    """A call of a ``norm``/``sqrt``-named function in ``node``."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Call):
            name = dotted_name(current.func) or ""
            last = name.rsplit(".", 1)[-1]
            if "norm" in last or last == "sqrt":
                return True
        stack.extend(children(current))
    return False
