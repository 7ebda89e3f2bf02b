"""QIG006: a Euclidean or cosine proximity between basins instead of the Fisher distance."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from qig_guard.config import Config
from qig_guard.names import words
from qig_guard.rules._basin_values import (
    BasinRule,
    BasinText,
    Value,
    basin_text_pattern,
    mentions_basin,
)
from qig_guard.rules._text import arguments_text, import_aliases, receiver_text
from qig_guard.rules.base import FileContext, Invalid, argument

_NORMS = frozenset(
    {
        "torch.norm",
        "torch.functional.norm",
        "torch.linalg.norm",
        "torch.linalg.vector_norm",
        "numpy.linalg.norm",
        "scipy.linalg.norm",
    }
)
# Functions of two operands; the value says whether a third ``p`` may make it non-Euclidean.
_PAIRWISE = {
    "torch.dist": True,
    "torch.cdist": True,
    "torch.nn.functional.pairwise_distance": True,
    "torch.nn.functional.mse_loss": False,
    "torch.nn.functional.cosine_similarity": False,
    "scipy.spatial.distance.euclidean": False,
    "scipy.spatial.distance.sqeuclidean": False,
    "scipy.spatial.distance.cosine": False,
    "sklearn.metrics.pairwise.cosine_similarity": False,
    "sklearn.metrics.pairwise.euclidean_distances": False,
}
_COSINES = frozenset(
    {
        "torch.nn.functional.cosine_similarity",
        "sklearn.metrics.pairwise.cosine_similarity",
        "torch.dot",
        "numpy.dot",
        "torch.inner",
        "numpy.inner",
    }
)
_MODULES = frozenset({"torch.nn.MSELoss", "torch.nn.PairwiseDistance", "torch.nn.CosineSimilarity"})
_SQRTS = frozenset({"torch.sqrt", "numpy.sqrt", "math.sqrt"})
_REDUCTIONS = frozenset({"torch.sum", "torch.mean", "numpy.sum", "numpy.mean", "sum"})
_SQUARES = frozenset({"torch.square", "numpy.square", "torch.pow", "numpy.power"})
_ONES = frozenset({"torch.ones", "torch.ones_like", "numpy.ones", "numpy.ones_like"})
_KEEP = frozenset({"detach", "clone", "cpu", "float", "double", "flatten", "view", "reshape"})
_SCALARS = frozenset({"mean", "sum", "max", "min", "median", "std", "var", "norm", "item"})
_NAMES = frozenset(
    q.rsplit(".", 1)[-1]
    for q in (*_NORMS, *_PAIRWISE, *_COSINES, *_MODULES, *_SQRTS, *_REDUCTIONS, *_SQUARES, *_ONES)
)
_MODULE_TEXT = re.compile(r"MSELoss|PairwiseDistance|CosineSimilarity")
_FISHER_IMPL = frozenset({"distance", "dist", "metric", "geodesic", "norm", "rao"})


# Callees whose call the rule reports, by last name; what the operands' text must show.
_REPORTED = frozenset(
    q.rsplit(".", 1)[-1] for q in (*_NORMS, *_PAIRWISE, *_SQRTS, *_REDUCTIONS, "torch.dot")
) | {"dist"}
_SQUARED = frozenset({"sum", "mean"})  # reported only around a square: ``*``, pow, square
_STEMS = ("norm", "sqrt", "sum", "mean", "dist", "mse", "cosine", "euclidean", "dot")
_WORD = re.compile(r"\w+")
_HALF_POWER = re.compile(r"\*\*[\s\\(]*(\d*\.?\d*(?:[eE][-+]?\d+)?)")


def _reported_calls(source: str, aliases: dict[str, str]) -> Iterator[tuple[str, int, int]]:
    """``(last name, index of the name, index of "(")`` for calls the rule may report."""
    for stem in _STEMS:
        if stem not in source:
            continue
        for match in re.finditer(stem + r"\w*[\s\\)]*\(", source):
            start = match.start()
            while start and (source[start - 1].isalnum() or source[start - 1] == "_"):
                start -= 1
            name = _WORD.match(source, start)
            last = name.group(0) if name else ""
            if last not in _REPORTED:
                continue
            yield last, start, match.end() - 1
    for alias, imported in aliases.items():
        if imported in _REPORTED:
            for match in re.finditer(rf"(?<![\w.]){re.escape(alias)}[\s\\)]*\(", source):
                yield imported, match.start(), match.end() - 1


def _squared(text: str) -> bool:
    return "*" in text or "pow" in text or "square" in text


def _may_report(source: str, text: BasinText, last: str, start: int, paren: int) -> bool:
    """Whether the call can be a reported shape: its operands (arguments for the
    function form, receiver for the method form) may hold a basin; reductions
    must also show a square."""
    arguments = arguments_text(source, paren)
    if arguments is None:
        return True
    dot = start
    while dot and source[dot - 1] in " \t\\\n":
        dot -= 1
    receiver = receiver_text(source, dot - 1).strip() if source[dot - 1 : dot] == "." else ""
    root = re.match(r"\w+", receiver)
    function_form = root is None or root.group(0) not in {"self", "cls"}
    if last in _SQUARED:
        return (function_form and _squared(arguments) and text.may_hold_basin(arguments)) or (
            _squared(receiver) and text.may_hold_basin(receiver)
        )
    return (function_form and text.may_hold_basin(arguments)) or text.may_hold_basin(receiver)


def _number(node: cst.BaseExpression | None) -> float | None:
    if isinstance(node, (cst.Integer, cst.Float)):
        return float(node.evaluated_value)
    return None


def _euclidean_order(order: cst.BaseExpression | None) -> bool:
    """No order, ``2`` or ``"fro"``: the Euclidean norm."""
    if order is None or _number(order) == 2:
        return True
    return isinstance(order, cst.SimpleString) and order.evaluated_value == "fro"


def _is_scalar(node: cst.BaseExpression) -> bool:
    """A number or a reduction of a tensor (``x.mean()``, ``torch.max(x)``)."""
    if isinstance(node, (cst.Integer, cst.Float)):
        return True
    if isinstance(node, cst.UnaryOperation):
        return _is_scalar(node.expression)
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value in _SCALARS
    )


class _SelfAssignments(cst.CSTVisitor):
    """``self.<attr> = value`` assignments in a class's methods."""

    def __init__(self) -> None:
        self.values: dict[str, list[cst.BaseExpression]] = {}

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            t = target.target
            if (
                isinstance(t, cst.Attribute)
                and isinstance(t.value, cst.Name)
                and t.value.value == "self"
            ):
                self.values.setdefault(t.attr.value, []).append(node.value)


class EuclideanBasinDistance(BasinRule):
    """
    ## What it does
    Flags a Euclidean or cosine proximity between basins: `torch.norm(a - b)`,
    `(a - b).norm()`, `torch.linalg.norm`/`vector_norm`, `np.linalg.norm(a - b)`,
    `torch.dist`, `torch.cdist`, `F.pairwise_distance`, `F.mse_loss`,
    `nn.MSELoss()(a, b)` (also through a name or `self.criterion`),
    `F.cosine_similarity`, and the hand-rolled forms `sqrt(((a - b) ** 2).sum())`,
    `((a - b) ** 2).mean()`, `torch.sqrt((d * d).sum())` where `d = a - b`, the
    chordal `sqrt(2 * (1 - cos))`, and a Fisher-distance call whose Fisher
    diagonal is `torch.ones_like(...)`/`np.ones(...)` (the identity metric).

    At least one operand must be a basin: by name (`basin-names`), a table of
    basins (`basin-tables`), or a value flowing from one within the function.
    Not flagged: a weighted difference (`sqrt(F) * (a - b)`), one vector's
    magnitude or normalisation (`basin / basin.norm()`), an explicit non-2
    order (`p=1`), distances between things that are not basins, and the body
    of a function or class implementing the Fisher distance itself.

    ## Why is this bad
    Basins live on a curved statistical manifold; the spec requires basin
    proximity to be measured with the Fisher metric. A Euclidean or cosine
    distance weighs every coordinate alike, so training and sync steps follow
    the wrong geometry and distances are not comparable across models.

    ## Example
    ```python
    loss = torch.norm(current_basin - target_basin)
    ```

    ## Use instead
    ```python
    from qig_guard.runtime import fisher_distance

    loss = fisher_distance(current_basin, target_basin, model.fisher_diag)
    ```
    """

    code = "QIG006"
    name = "euclidean-basin-distance"
    summary = "Euclidean or cosine distance between basins where the Fisher distance is required"
    INVALID = (
        Invalid("import torch\nloss = torch.norm(current_basin - target_basin)\n"),
        Invalid("drift = (model.basin_matcher.current_basin - target_basin).norm()\n"),
        Invalid(
            "import torch.nn.functional as F\n\n\ndef step(model, target_basin):\n"
            "    current = model.basin_matcher.current_basin\n"
            "    return F.mse_loss(current, target_basin)\n"
        ),
        Invalid("import torch\nd = torch.sqrt(((basin_a - basin_b) ** 2).sum())\n"),
        Invalid(
            "import torch\nfrom qig_guard.runtime import fisher_distance\n"
            "dist = fisher_distance(basin, target_basin, torch.ones_like(basin))\n"
        ),
    )
    VALID = (
        "from qig_guard.runtime import fisher_distance\n"
        "loss = fisher_distance(current_basin, target_basin, model.fisher_diag)\n",
        "import torch\nunit = basin / basin.norm()\n",
        "import torch\nd = torch.norm(torch.sqrt(fisher) * (current_basin - target_basin))\n",
        "import torch\nerr = torch.norm(logits - labels)\n",
        "import torch\n\n\ndef fisher_distance(a_basin, b_basin, fisher_diag):\n"
        "    return torch.sqrt((fisher_diag * (a_basin - b_basin) ** 2).sum())\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self._covered: set[int] = set()
        self._classes: dict[int, dict[str, list[cst.BaseExpression]]] = {}
        self._mentions_modules = _MODULE_TEXT.search(context.source) is not None

    @classmethod
    def could_match(cls, source: str, config: Config) -> bool:
        """A basin name, then an ``nn`` distance module, an identity Fisher metric
        (``ones`` and ``fisher``), ``** 0.5``, or a call of a norm, sqrt, pairwise
        distance, cosine, dot or squared reduction whose operands may hold a basin."""
        names = (*config.basin_names, *config.basin_tables)
        basin = basin_text_pattern(names)
        if not mentions_basin(source, names, basin):
            return False
        if any(m in source for m in ("Loss", "Distance", "Similarity")) and _MODULE_TEXT.search(
            source
        ):
            return True
        if "ones" in source and "fisher" in source.lower():
            return True
        if "**" in source:
            for power in _HALF_POWER.findall(source):
                try:
                    if float(power) == 0.5:
                        return True
                except ValueError:
                    continue
        aliases = {alias: imported for imported, alias in import_aliases(source)}
        text = BasinText(source, basin, names)
        return any(
            _may_report(source, text, last, start, paren)
            for last, start, paren in _reported_calls(source, aliases)
        )

    # -- visiting ------------------------------------------------------------
    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Power) and _number(node.right) == 0.5:
            self._check_sqrt(node, node.left)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (
            id(node) in self._covered
            or not self._may_flag(func)
            or self._in_fisher_implementation()
        ):
            return
        qualified = self._resolve(func)
        if qualified in _SQRTS:
            inner = argument(node, 0, "x", "input")
            if inner is not None:
                self._check_sqrt(node, inner)
        elif isinstance(func, cst.Attribute) and func.attr.value == "sqrt" and not node.args:
            self._check_sqrt(node, func.value)
        if id(node) in self._covered:
            return
        if self._is_norm_of_difference(node, qualified):
            self._flag(node, "the Euclidean norm of a basin difference")
        elif self._is_pairwise(node, qualified):
            self._flag(node, f"`{qualified}` between basins")
        elif self._is_module_call(node):
            self._flag(node, f"`{self.context.code_for(node.func)}` between basins")
        elif self._is_sum_of_squares(node):
            self._flag(node, "a hand-rolled squared Euclidean distance between basins")
        elif self._is_identity_fisher(node):
            self._flag(node, "a Fisher distance with the identity metric (`ones`), i.e. Euclidean")

    def _may_flag(self, func: cst.BaseExpression) -> bool:
        """A cheap look at the callee before anything is resolved."""
        if self._mentions_modules:
            return True  # ``criterion(a, b)`` may be an ``nn.MSELoss()``
        if isinstance(func, cst.Attribute):
            last = func.attr.value
        elif isinstance(func, cst.Name):
            last = func.value
        else:
            return False
        return last in _NAMES or last in self.values.aliases or "fisher" in words(last)

    def _resolve(self, func: cst.BaseExpression) -> str | None:
        return self.values.call_name(func, _NAMES)

    def _check_sqrt(self, node: cst.BaseExpression, inner: cst.BaseExpression) -> None:
        if self._in_fisher_implementation():
            return
        if self._is_sum_of_squares(inner):
            self._cover(inner)
            self._flag(node, "a hand-rolled Euclidean distance between basins")
        elif self._is_chordal(inner):
            self._cover(inner)
            self._flag(node, "the chordal distance `sqrt(2 * (1 - cos))`, Euclidean on the sphere")

    def _cover(self, node: cst.CSTNode) -> None:
        """Mark ``node`` and the calls in it as reported by an enclosing finding."""
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, cst.Call):
                self._covered.add(id(current))
            stack.extend(current.children)

    def _flag(self, node: cst.CSTNode, what: str) -> None:
        self.report(
            node,
            f"basin proximity measured with {what}; use the Fisher distance "
            "`fisher_distance(a, b, fisher_diag)`",
        )

    def _in_fisher_implementation(self) -> bool:
        scopes = [s.name.value for s in self.context.scopes.functions] + [
            s.name.value for s in self.context.scopes.classes
        ]
        return any(
            "fisher" in (found := set(words(name))) and found & _FISHER_IMPL for name in scopes
        )

    # -- shapes ------------------------------------------------------------
    def _is_difference(self, node: Value) -> bool:
        """``a - b`` with a basin (or table of basins) on one side; also via a local name."""
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Subtract):
            if _is_scalar(node.left) or _is_scalar(node.right):
                return False  # centring or shifting one vector: ``basin - basin.mean()``
            return self.values.is_basin_or_table(node.left) or self.values.is_basin_or_table(
                node.right
            )
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_difference)
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            return node.func.attr.value in _KEEP and self._is_difference(node.func.value)
        return False

    def _is_square_of_difference(self, node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, cst.Power):
                return _number(node.right) == 2 and self._is_difference(node.left)
            if isinstance(node.operator, cst.Multiply):
                same = self.context.code_for(node.left) == self.context.code_for(node.right)
                return same and self._is_difference(node.left)
            return False
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        qualified = self._resolve(func)
        if qualified in _SQUARES:
            inner = argument(node, 0, "input", "x", "x1")
            squared = qualified.endswith("square") or _number(argument(node, 1, "exponent")) == 2
            return squared and inner is not None and self._is_difference(inner)
        if isinstance(func, cst.Attribute) and func.attr.value in {"pow", "square"}:
            exponent = argument(node, 0, "exponent")
            squared = func.attr.value == "square" or _number(exponent) == 2
            return squared and self._is_difference(func.value)
        return False

    def _is_sum_of_squares(self, node: cst.BaseExpression) -> bool:
        """``((a - b) ** 2).sum()``, ``torch.mean(d * d)``, ``torch.dot(d, d)``."""
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        qualified = self._resolve(func)
        if qualified in _REDUCTIONS:
            inner = argument(node, 0, "input", "a")
            return inner is not None and self._is_square_of_difference(inner)
        if isinstance(func, cst.Attribute) and func.attr.value in {"sum", "mean"}:
            return self._is_square_of_difference(func.value)
        if qualified in {"torch.dot", "numpy.dot"}:
            left, right = argument(node, 0, "input"), argument(node, 1, "other", "tensor")
            return (
                left is not None
                and right is not None
                and self.context.code_for(left) == self.context.code_for(right)
                and self._is_difference(left)
            )
        return False

    def _is_cosine(self, node: Value) -> bool:
        """A cosine or dot product between basins (directly or via a local name)."""
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_cosine)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.MatrixMultiply):
            return self._has_basin_operand(node.left, node.right)
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        if self._resolve(func) in _COSINES:
            first, second = argument(node, 0, "x1", "input"), argument(node, 1, "x2", "other")
            return self._has_basin_operand(first, second)
        if isinstance(func, cst.Attribute):
            if func.attr.value in {"clamp", "clip", "item", "squeeze", *_KEEP}:
                return self._is_cosine(func.value)
            if func.attr.value == "sum" and isinstance(func.value, cst.BinaryOperation):
                product = func.value
                return isinstance(product.operator, cst.Multiply) and self._has_basin_operand(
                    product.left, product.right
                )
        return False

    def _is_chordal(self, node: Value) -> bool:
        """``2 * (1 - cos)``, ``(1 - cos) * 2`` or ``2 - 2 * cos`` with a basin cosine."""
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_chordal)
        if not isinstance(node, cst.BinaryOperation):
            return False
        if isinstance(node.operator, cst.Multiply):
            for two, rest in ((node.left, node.right), (node.right, node.left)):
                if (
                    _number(two) == 2
                    and isinstance(rest, cst.BinaryOperation)
                    and isinstance(rest.operator, cst.Subtract)
                    and _number(rest.left) == 1
                    and self._is_cosine(rest.right)
                ):
                    return True
        if isinstance(node.operator, cst.Subtract) and _number(node.left) == 2:
            product = node.right
            return (
                isinstance(product, cst.BinaryOperation)
                and isinstance(product.operator, cst.Multiply)
                and _number(product.left) == 2
                and self._is_cosine(product.right)
            )
        return False

    def _has_basin_operand(self, *operands: cst.BaseExpression | None) -> bool:
        return any(o is not None and self.values.is_basin_or_table(o) for o in operands)

    def _is_norm_of_difference(self, node: cst.Call, qualified: str | None) -> bool:
        func = node.func
        if qualified in _NORMS:
            inner = argument(node, 0, "input", "x", "A")
            order = argument(node, 1, "p", "ord")
        elif isinstance(func, cst.Attribute) and func.attr.value == "norm":
            inner, order = func.value, argument(node, 0, "p")
        else:
            return False
        return inner is not None and _euclidean_order(order) and self._is_difference(inner)

    def _is_pairwise(self, node: cst.Call, qualified: str | None) -> bool:
        func = node.func
        if qualified in _PAIRWISE:
            if _PAIRWISE[qualified] and not _euclidean_order(argument(node, 2, "p")):
                return False
            return self._has_basin_operand(
                argument(node, 0, "input", "x1", "u", "X", "XA"),
                argument(node, 1, "other", "target", "x2", "v", "Y", "XB"),
            )
        if isinstance(func, cst.Attribute) and func.attr.value == "dist" and node.args:
            return _euclidean_order(argument(node, 1, "p")) and self.values.is_basin_or_table(
                func.value
            )
        return False

    def _is_module_call(self, node: cst.Call) -> bool:
        """``nn.MSELoss()(a, b)``, or a name / ``self.attr`` bound to such a module."""
        if not self._has_basin_operand(argument(node, 0, "input"), argument(node, 1, "target")):
            return False
        return self._is_module(node.func)

    def _is_module(self, node: Value) -> bool:
        if isinstance(node, cst.Call):
            return self._resolve(node.func) in _MODULES
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_module)
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value == "self"
            and self.context.scopes.classes
        ):
            bound = self._self_assignments(self.context.scopes.classes[-1]).get(node.attr.value)
            return bool(bound) and all(self._is_module(value) for value in bound or ())
        return False

    def _self_assignments(self, cls: cst.ClassDef) -> dict[str, list[cst.BaseExpression]]:
        found = self._classes.get(id(cls))
        if found is None:
            collector = _SelfAssignments()
            cls.body.visit(collector)
            found = self._classes[id(cls)] = collector.values
        return found

    def _is_identity_fisher(self, node: cst.Call) -> bool:
        """``fisher_distance(a, b, torch.ones_like(a))``: the identity metric."""
        name = self.context.code_for(node.func).rsplit(".", 1)[-1]
        called = set(words(name))
        if "fisher" not in called or not called & {"distance", "dist"}:
            return False
        metric = argument(node, 2, "fisher_diag", "fisher", "metric", "diag", "weights")
        operands = (argument(node, 0), argument(node, 1))
        return metric is not None and self._is_ones(metric) and self._has_basin_operand(*operands)

    def _is_ones(self, node: Value) -> bool:
        if isinstance(node, cst.Call):
            return self._resolve(node.func) in _ONES
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_ones)
        return False
