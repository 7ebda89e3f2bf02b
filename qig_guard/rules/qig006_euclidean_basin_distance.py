"""QIG006: a Euclidean or cosine proximity between basins instead of the Fisher distance."""

from __future__ import annotations

import re

import libcst as cst

from qig_guard.engine.traversal import children
from qig_guard.facts.distances import (
    ABS_FUNCTIONS,
    ARCCOS_FUNCTIONS,
    CLIP_FUNCTIONS,
    COSINE_FUNCTIONS,
    DISTANCE_FUNCTION_NAMES,
    DISTANCE_MODULES,
    DOT_FUNCTIONS,
    EUCLIDEAN_METRICS,
    METRIC_DISTANCES,
    NORM_FUNCTIONS,
    NORMALIZE,
    ONES_FUNCTIONS,
    PAIRWISE_DISTANCES,
    SQRT_FUNCTIONS,
    SQUARE_FUNCTIONS,
    SUM_FUNCTIONS,
    DistanceValues,
)
from qig_guard.facts.torch_api import VALUE_KEEPING_METHODS, makes_random_data
from qig_guard.facts.vocabulary import DISTANCE_WORDS
from qig_guard.facts.words import words
from qig_guard.rules._basin_values import (
    BasinRule,
    Value,
    call_args,
    string_value,
)
from qig_guard.rules.base import FileContext, Invalid, argument, number_value
from qig_guard.rules.gates import (
    Binary,
    Defines,
    Holds,
    Identifiers,
    MatMul,
    Named,
    PowerOf,
    Text,
    Words,
)

# What the gate needs (evaluated when the class is created), path by path of the rule.
_MODULE_CLASSES = frozenset(q.rsplit(".", 1)[-1] for q in DISTANCE_MODULES)
# (An angle, `arccos(cos)`, is flagged only when ``cos`` is a cosine by formula.)
_TWO_OPERANDS = frozenset(
    q.rsplit(".", 1)[-1] for q in (*PAIRWISE_DISTANCES, *METRIC_DISTANCES, *DISTANCE_MODULES)
) | {"dist", "cosine_similarity"}
# What a unit that calls a normalising helper of the file uses, for the gate (no identifier
# can be spelled so).
_CALLS_A_NORMALISER = "a normalising helper"
# A dot product (``_dot_operands``): a product function, `a @ b` (not a decorator), a
# summed product `(a * b).sum()`.
_DOT = (
    Identifiers(*(q.rsplit(".", 1)[-1] for q in DOT_FUNCTIONS))
    | MatMul()
    | (Identifiers("sum") & Text("*"))
)
# A root by power: `** 0.5`, the literal ``number_value`` reads (not `** 2`).
_HALF_POWER = PowerOf(0.5)
# A length (``_is_norm_like``) or a normalisation (``_is_unit``): a norm, a root, a
# power (`** 0.5`), `normalize` or a normalising helper.
_LENGTH = (
    Identifiers(
        *(q.rsplit(".", 1)[-1] for q in (*NORM_FUNCTIONS, *SQRT_FUNCTIONS, NORMALIZE)),
        "norm",
        _CALLS_A_NORMALISER,
    )
    | _HALF_POWER
)
# A difference of two values that are not numbers (``_is_difference``): `a - b`,
# `a - (b)`, `a - [b]`, `a - -b`; not `-1`, `1e-8` or `->`.
_MINUS = Binary("-", r"[^\W\d]|[(\[~+-]")
# A sum of squares of a difference (``_is_sum_of_squares``): a sum or mean of a square
# (`** 2`, `d * d`, `square`, `pow`), or a dot of the difference with itself.
_SUM_OF_SQUARES = (
    Identifiers("sum", "mean") & (Text("*") | Identifiers("square", "pow", "power"))
) | _DOT


class EuclideanBasinDistance(BasinRule):
    """
    ## What it does
    Flags a Euclidean, cosine, chordal or angle-of-cosine distance between
    basins, recognised by its formula wherever it appears, also inside a
    function named after the Fisher distance:

    - the Euclidean norm of a difference: `torch.norm(a - b)`, `(a - b).norm()`,
      `torch.linalg.norm`/`vector_norm`, `np.linalg.norm(a - b)`, `torch.dist`,
      `torch.cdist`, `F.pairwise_distance`, `math.dist`, SciPy's `euclidean` and
      `cdist`/`pdist` (Euclidean or cosine metric), `F.mse_loss`,
      `nn.MSELoss()(a, b)` (also through a name or `self.criterion`), and
      hand-rolled `sqrt(((a - b) ** 2).sum())`, `((a - b) ** 2).mean()`,
      `sqrt((d * d).sum())`, `sqrt(d @ d)`;
    - a cosine: `F.cosine_similarity`, or a dot over the norms
      (`np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))`, `a @ b / (na * nb)`)
      or a dot of normalised basins (`F.normalize`, `b / (norm(b) + eps)`, a
      normalising helper of the same file), used as a distance: `1 - cos`,
      `arccos(cos)` (clipped or not), or the chordal `sqrt(2 * (1 - cos))`;
    - a Fisher-distance call whose Fisher diagonal is `ones`/`ones_like`
      (the identity metric), under any keyword.

    At least one operand must be a basin: by name (`basin-names`), a table of
    basins (`basin-tables`), a value flowing from one within the function, or
    a parameter of a function comparing two basins by its name
    (`basin_distance(a, b)`, `fisher_distance_np(a, b)`, `_fisher_rao_distance`).
    Not flagged: a difference weighted by a Fisher metric (`sqrt(F) * (a - b)`),
    computations in sqrt-probability coordinates (Bhattacharyya
    `arccos(sum(sqrt(p * q)))`, Hellinger `norm(sqrt(p) - sqrt(q))`, `arccos` of a
    plain dot), one vector's magnitude or normalisation (`basin / basin.norm()`),
    an explicit non-2 order (`p=1`), an angle that feeds `sin` (a slerp), and
    distances between things that are not basins.

    ## Why is this bad
    Basins live on a curved statistical manifold; the spec requires basin
    proximity to be measured with the Fisher metric. A Euclidean or cosine
    distance weighs every coordinate alike, so training and sync steps follow
    the wrong geometry and distances are not comparable across models. Named
    after Fisher or not, `sqrt(2 * (1 - cos))` and `arccos(cos)` of L2-normalised
    raw vectors are Euclidean geometry on the unit sphere.

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
    # A distance-named helper's operands may be basins its callers pass (tested on the
    # helper's name, as ``DistanceValues._compares_basins`` reads it); a normaliser
    # helper it calls (`unit(v)`: `v / norm(v)`) keeps its argument's kind.
    callers = Words(*DISTANCE_WORDS)
    # A normaliser helper returns its first parameter divided by a norm or root, or
    # passed to ``normalize`` (``DistanceValues.is_normaliser``); only those are read.
    callees = Text("return") & Text("/", "normalize") & Text("norm", "sqrt")
    # Calling one normalises: `dot(unit(a), unit(b))` is a cosine.
    callees_stand_for = frozenset({_CALLS_A_NORMALISER})
    # A distance takes two basins: a pairwise function or product (a cosine), an identity
    # Fisher metric, or a norm, root or sum next to a difference (`a - b`, `1 - cos`).
    # An operand is a basin by its name, or as a parameter of a function that compares
    # two basins by its own name (``DistanceValues._compares_basins``: a distance word).
    gate = (Named("basin_names", "basin_tables", project=True) | Defines(*DISTANCE_WORDS)) & (
        # A pairwise function or distance module (``_is_pairwise``, ``_is_module_call``).
        Identifiers(*_TWO_OPERANDS)
        | Holds(*_MODULE_CLASSES)
        # A cosine by formula (``_is_unit_cosine``): its angle, `1 - cos`, or itself.
        | (_DOT & _LENGTH)
        # An identity Fisher metric (``_is_identity_fisher``).
        | (Identifiers(*(q.rsplit(".", 1)[-1] for q in ONES_FUNCTIONS)) & Words("fisher"))
        # The norm of a difference, or a sum of its squares (``_is_norm_of_difference``).
        | (
            _MINUS
            & (
                Identifiers(*(q.rsplit(".", 1)[-1] for q in NORM_FUNCTIONS), "norm")
                | _SUM_OF_SQUARES
            )
        )
        # A chordal distance (``_is_chordal``): the root of `2 * (1 - cos)` or `2 - 2 * cos`.
        | (
            (Identifiers(*(q.rsplit(".", 1)[-1] for q in SQRT_FUNCTIONS)) | _HALF_POWER)
            & Text("-")
            & Text("*")
            & _DOT
        )
    )
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
        Invalid(
            "import numpy as np\n\n\ndef fisher_distance(a, b):\n"
            "    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))\n"
            "    return np.sqrt(2 * (1 - cos))\n"
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
        "import numpy as np\n\n\ndef fisher_rao_distance(p, q):\n"
        "    return np.arccos(np.clip(np.sum(np.sqrt(p * q)), 0.0, 1.0))\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self.values = self._distances = DistanceValues(context)
        self._covered: set[int] = set()
        self._mentions_modules = _MODULE_TEXT.search(context.source) is not None

    # -- visiting ------------------------------------------------------------
    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if id(node) in self._covered:
            return
        if isinstance(node.operator, cst.Power) and number_value(node.right) == 0.5:
            self._distances.before = node
            self._check_sqrt(node, node.left)
        elif isinstance(node.operator, cst.Multiply):
            for two, rest in ((node.left, node.right), (node.right, node.left)):
                if number_value(two) == 2 and isinstance(rest, cst.BinaryOperation):
                    self._covered.add(id(rest))  # ``2 * (1 - cos)``: reported at its ``sqrt``
        elif isinstance(node.operator, cst.Subtract) and number_value(node.left) == 1:
            self._distances.before = node
            if self._is_unit_cosine(node.right):
                self._cover(node)
                self._flag(node, "one minus the cosine of basins (a cosine distance)")
        elif isinstance(node.operator, (cst.Divide, cst.MatrixMultiply)):
            self._distances.before = node
            self._check_cosine_formula(node)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if id(node) in self._covered or not self._may_flag(func):
            return
        self._distances.before = node
        qualified = self._resolve(func)
        cosine: cst.BaseExpression | None = None
        if qualified in ARCCOS_FUNCTIONS:
            cosine = argument(node, 0, "x", "input")
        elif isinstance(func, cst.Attribute) and func.attr.value in {"acos", "arccos"}:
            cosine = func.value
        if cosine is not None and self._is_unit_cosine(cosine):
            self._cover(node)  # a slerp's angle: neither it nor its cosine is a distance
            if not self._is_slerp(node):
                self._flag(node, "the angle of a cosine between basins (`arccos`)")
            return
        if qualified in SQRT_FUNCTIONS:
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
        else:
            self._check_cosine_formula(node)

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
        return (
            last in DISTANCE_FUNCTION_NAMES
            or last in self.values.aliases
            or "fisher" in words(last)
        )

    def _resolve(self, func: cst.BaseExpression) -> str | None:
        return self.values.call_name(func, DISTANCE_FUNCTION_NAMES)

    def _check_sqrt(self, node: cst.BaseExpression, inner: cst.BaseExpression) -> None:
        if self._is_sum_of_squares(inner):
            self._cover(inner)
            self._flag(node, "a hand-rolled Euclidean distance between basins")
        elif self._is_chordal(inner):
            self._cover(inner)
            self._flag(node, "the chordal distance `sqrt(2 * (1 - cos))`, Euclidean on the sphere")

    def _cover(self, node: cst.CSTNode) -> None:
        """Mark ``node`` and the calls and operations in it as reported by an enclosing finding."""
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, (cst.Call, cst.BinaryOperation)):
                self._covered.add(id(current))
            stack.extend(children(current))

    def _flag(self, node: cst.BaseExpression, what: str) -> None:
        if self._only_normalises(node):
            return
        self.report(
            node,
            f"basin proximity measured with {what}; use the Fisher distance "
            "`fisher_distance(a, b, fisher_diag)`",
        )

    # -- shapes ------------------------------------------------------------
    def _is_difference(self, node: Value) -> bool:
        """``a - b`` with a basin (or table of basins) on one side; also via a local name."""
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Subtract):
            if _is_scalar(node.left) or _is_scalar(node.right):
                return False  # centring or shifting one vector: ``basin - basin.mean()``
            return self._is_basin(node.left) or self._is_basin(node.right)
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_difference)
        if isinstance(node, cst.Call):
            func = node.func
            if self._resolve(func) in ABS_FUNCTIONS:
                inner = argument(node, 0, "x", "input")
                return inner is not None and self._is_difference(inner)
            if isinstance(func, cst.Attribute):
                return func.attr.value in _KEEPS_A_DIFFERENCE and self._is_difference(func.value)
        return False

    def _is_square_of_difference(self, node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, cst.Power):
                return number_value(node.right) == 2 and self._is_difference(node.left)
            if isinstance(node.operator, cst.Multiply):
                same = self.context.code_for(node.left) == self.context.code_for(node.right)
                return same and self._is_difference(node.left)
            return False
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        qualified = self._resolve(func)
        if qualified in SQUARE_FUNCTIONS:
            inner = argument(node, 0, "input", "x", "x1")
            squared = (
                qualified.endswith("square") or number_value(argument(node, 1, "exponent")) == 2
            )
            return squared and inner is not None and self._is_difference(inner)
        if isinstance(func, cst.Attribute) and func.attr.value in {"pow", "square"}:
            exponent = argument(node, 0, "exponent")
            squared = func.attr.value == "square" or number_value(exponent) == 2
            return squared and self._is_difference(func.value)
        return False

    def _is_sum_of_squares(self, node: cst.BaseExpression) -> bool:
        """``((a - b) ** 2).sum()``, ``torch.mean(d * d)``, ``torch.dot(d, d)``, ``d @ d``."""
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.MatrixMultiply):
            return self.context.code_for(node.left) == self.context.code_for(
                node.right
            ) and self._is_difference(node.left)
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        qualified = self._resolve(func)
        if qualified in SUM_FUNCTIONS:
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
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            return self._is_unit_cosine(node)
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        qualified = self._resolve(func)
        if qualified in COSINE_FUNCTIONS:
            first, second = argument(node, 0, "x1", "input"), argument(node, 1, "x2", "other")
            return self._has_basin_operand(first, second)
        if qualified in CLIP_FUNCTIONS or (isinstance(func, cst.Name) and func.value == "float"):
            inner = argument(node, 0, "input", "a", "x")
            return inner is not None and self._is_cosine(inner)
        if isinstance(func, cst.Attribute) and qualified is None:
            if func.attr.value in _KEEPS_A_COSINE:
                return self._is_cosine(func.value)
            if func.attr.value == "sum" and isinstance(func.value, cst.BinaryOperation):
                product = func.value
                return isinstance(product.operator, cst.Multiply) and self._has_basin_operand(
                    product.left, product.right
                )
        return False

    def _is_chordal(self, node: Value) -> bool:
        """``2 * (1 - cos)``, ``(1 - cos) * 2`` or ``2 - 2 * cos`` with a basin cosine
        (also clamped)."""
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_chordal)
        if isinstance(node, cst.Call):
            inner = self._clipped(node)
            return inner is not None and self._is_chordal(inner)
        if not isinstance(node, cst.BinaryOperation):
            return False
        if isinstance(node.operator, cst.Multiply):
            for two, rest in ((node.left, node.right), (node.right, node.left)):
                if (
                    number_value(two) == 2
                    and isinstance(rest, cst.BinaryOperation)
                    and isinstance(rest.operator, cst.Subtract)
                    and number_value(rest.left) == 1
                    and self._is_cosine(rest.right)
                ):
                    return True
        if isinstance(node.operator, cst.Subtract) and number_value(node.left) == 2:
            product = node.right
            return (
                isinstance(product, cst.BinaryOperation)
                and isinstance(product.operator, cst.Multiply)
                and number_value(product.left) == 2
                and self._is_cosine(product.right)
            )
        return False

    def _clipped(self, node: cst.Call) -> cst.BaseExpression | None:
        """``x`` of ``np.clip(x, ...)``, ``torch.clamp(x, ...)``, ``x.clamp(...)``, ``float(x)``,
        ``max(x, eps)``, ``x.item()``."""
        func = node.func
        qualified = self._resolve(func)
        if qualified in CLIP_FUNCTIONS or (isinstance(func, cst.Name) and func.value == "float"):
            return argument(node, 0, "input", "a", "x")
        if isinstance(func, cst.Name) and func.value in {"max", "min"} and len(node.args) == 2:
            first, second = (a.value for a in node.args)
            if number_value(second) is not None or isinstance(second, cst.UnaryOperation):
                return first
            return second if number_value(first) is not None else None
        if (
            isinstance(func, cst.Attribute)
            and qualified is None
            and func.attr.value in _KEEPS_A_COSINE
        ):
            return func.value
        return None

    def _is_unit_cosine(self, node: Value) -> bool:
        """A cosine of basins built by formula: a dot over the product of the norms,
        or a dot of normalised basins (also clipped, via local names)."""
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_unit_cosine)
        if isinstance(node, cst.Call):
            inner = self._clipped(node)
            if inner is not None:
                return self._is_unit_cosine(inner)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            operands = self._dot_operands(node.left)
            return (
                operands is not None
                and self._has_basin_operand(*operands)
                and self._is_norm_like(node.right)
            )
        if not isinstance(node, cst.BaseExpression):
            return False
        operands = self._dot_operands(node)
        return operands is not None and all(self._is_unit(o) for o in operands)

    def _dot_operands(
        self, node: cst.BaseExpression
    ) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
        """``(a, b)`` of ``np.dot(a, b)``, ``a @ b``, ``(a * b).sum()``, ``np.sum(a * b)``;
        a local name assigned once is followed."""
        if isinstance(node, cst.Name):
            value = self.values.single_value(node.value)
            return self._dot_operands(value) if value is not None else None
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.MatrixMultiply):
            return node.left, node.right
        if not isinstance(node, cst.Call):
            return None
        func = node.func
        qualified = self._resolve(func)
        if qualified in DOT_FUNCTIONS:
            first, second = argument(node, 0, "input", "a"), argument(node, 1, "other", "b")
            return (first, second) if first is not None and second is not None else None
        product: cst.BaseExpression | None = None
        if qualified in {"numpy.sum", "torch.sum"}:
            product = argument(node, 0, "input", "a")
        elif isinstance(func, cst.Attribute) and qualified is None and func.attr.value == "sum":
            product = func.value
        if isinstance(product, cst.BinaryOperation) and isinstance(product.operator, cst.Multiply):
            return product.left, product.right
        return None

    def _is_unit(self, node: Value) -> bool:
        """A basin scaled to unit length: ``F.normalize(b)``, ``b / norm(b)`` (``+ eps``),
        or a same-file normalising helper of a basin."""
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_unit)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            return self.values.is_basin(node.left) and self._is_norm_like(node.right)
        if isinstance(node, cst.Call):
            func = node.func
            if self._resolve(func) == NORMALIZE or self._distances.is_normaliser(func):
                first = argument(node, 0, "input", "x")
                return first is not None and self.values.is_basin(first)
            if isinstance(func, cst.Attribute) and func.attr.value in VALUE_KEEPING_METHODS:
                return self._is_unit(func.value)
        return False

    def _is_norm_like(self, node: Value) -> bool:
        """A norm, a square root, a product of them, or one plus a small constant."""
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_norm_like)
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, cst.Multiply):
                return self._is_norm_like(node.left) and self._is_norm_like(node.right)
            if isinstance(node.operator, cst.Add):
                return self._is_norm_like(node.left) or self._is_norm_like(node.right)
            return isinstance(node.operator, cst.Power) and number_value(node.right) == 0.5
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        qualified = self._resolve(func)
        if qualified in NORM_FUNCTIONS or qualified in SQRT_FUNCTIONS:
            return True
        if isinstance(func, cst.Attribute) and func.attr.value in {"norm", "sqrt"}:
            return qualified is None or qualified in NORM_FUNCTIONS
        if isinstance(func, cst.Name) and func.value in {"float", "max"}:
            first = argument(node, 0)
            return first is not None and self._is_norm_like(first)
        inner = self._clipped(node)
        return inner is not None and self._is_norm_like(inner)

    def _is_slerp(self, angle: cst.Call) -> bool:
        """The angle is bound to a name that a ``sin``/``cos`` of the function uses:
        a spherical interpolation, not a distance."""
        return self._name_used_in(angle, rf"\b(?:{'|'.join(_TRIG)})\s*\([^\n]*\b{{name}}\b")

    def _name_used_in(self, node: cst.BaseExpression, template: str) -> bool:
        """A local name whose assigned value contains ``node`` appears in the enclosing
        function's code where ``template`` (with ``{name}``) matches."""
        scope, flow = self.values.flow()
        start, end = self.context.order(node, scope)
        code: str | None = None
        for name, values in flow.values.items():
            for value in values:
                if not isinstance(value, cst.BaseExpression):
                    continue
                first, last = self.context.order(value, scope)
                if first <= start and end <= last:
                    break
            else:
                continue
            code = self.context.code_for(scope) if code is None else code
            if re.search(template.replace("{name}", re.escape(name)), code):
                return True
        return False

    def _check_cosine_formula(self, node: cst.BaseExpression) -> None:
        """A cosine of basins by formula (``dot / (na * nb)``, a dot of normalised basins),
        unless an ``arccos``, ``1 -``, square root or clip of it reports it (or a slerp uses it)."""
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            cosine = self._is_unit_cosine(node)
        else:
            operands = self._dot_operands(node)
            cosine = operands is not None and all(self._is_unit(o) for o in operands)
        if cosine and not self._name_used_in(node, _USES_OF_A_COSINE):
            self._cover(node)
            self._flag(node, "a cosine of basins (a dot product over their norms)")

    def _has_basin_operand(self, *operands: cst.BaseExpression | None) -> bool:
        return any(o is not None and self._is_basin(o) for o in operands)

    def _is_basin(self, node: cst.BaseExpression) -> bool:
        """A basin or a table of basins, not one drawn at random in this function
        (``basin1 = np.random.randn(64)`` in a test of a distance function); a list
        display of basins (``[basin_a]``) is a table."""
        if isinstance(node, (cst.List, cst.Tuple)):
            return bool(node.elements) and all(
                not isinstance(e, cst.StarredElement) and self._is_basin(e.value)
                for e in node.elements
            )
        return self.values.is_basin_or_table(node) and not self._is_random(node)

    def _is_random(self, node: Value) -> bool:
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_random)
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in VALUE_KEEPING_METHODS:
            return self._is_random(func.value)
        name = self.context.qualified_name(func) or ""
        return makes_random_data(name)

    def _only_normalises(self, node: cst.BaseExpression) -> bool:
        """The value is bound to a name that is only divided by (``v / (n + eps)``) and
        compared: a difference scaled to a unit direction, not a distance."""
        scope, flow = self.values.flow()
        if not isinstance(scope, cst.FunctionDef):
            return False
        name = next(
            (n for n, bound in flow.values.items() if any(_unwrap(v) is node for v in bound)),
            None,
        )
        if name is None:
            return False
        divides = False
        stack: list[tuple[cst.CSTNode, tuple[cst.CSTNode, ...]]] = [(scope.body, ())]
        while stack:
            current, parents = stack.pop()
            if isinstance(current, cst.Name) and current.value == name and parents:
                role = _use_role(current, parents)
                if role is None:
                    return False
                divides = divides or role == "divisor"
            elif not isinstance(current, cst.AssignTarget):
                parents = (*parents[-2:], current)
                if isinstance(current, cst.Attribute):
                    stack.append((current.value, parents))  # not the ``norm`` of ``x.norm``
                elif isinstance(current, cst.Arg):
                    stack.append((current.value, parents))
                else:
                    stack.extend((child, parents) for child in children(current))
        return divides

    def _is_norm_of_difference(self, node: cst.Call, qualified: str | None) -> bool:
        func = node.func
        if qualified in NORM_FUNCTIONS:
            inner = argument(node, 0, "input", "x", "A")
            order = argument(node, 1, "p", "ord")
        elif isinstance(func, cst.Attribute) and func.attr.value == "norm":
            inner, order = func.value, argument(node, 0, "p")
        else:
            return False
        return inner is not None and _euclidean_order(order) and self._is_difference(inner)

    def _is_pairwise(self, node: cst.Call, qualified: str | None) -> bool:
        func = node.func
        if qualified in PAIRWISE_DISTANCES:
            if PAIRWISE_DISTANCES[qualified] and not _euclidean_order(argument(node, 2, "p")):
                return False
            return self._has_basin_operand(
                argument(node, 0, "input", "x1", "u", "X", "XA"),
                argument(node, 1, "other", "target", "x2", "v", "Y", "XB"),
            )
        if qualified in METRIC_DISTANCES:
            metric = argument(node, METRIC_DISTANCES[qualified], "metric")
            name = string_value(metric) if metric is not None else "euclidean"
            return name in EUCLIDEAN_METRICS and self._has_basin_operand(
                argument(node, 0, "XA", "X"), argument(node, 1, "XB", "Y")
            )
        if isinstance(func, cst.Attribute) and func.attr.value == "dist" and node.args:
            return _euclidean_order(argument(node, 1, "p")) and self._is_basin(func.value)
        return False

    def _is_module_call(self, node: cst.Call) -> bool:
        """``nn.MSELoss()(a, b)``, or a name / ``self.attr`` bound to such a module."""
        if not self._mentions_modules:  # cheap: no such module named, no such call
            return False
        if not self._has_basin_operand(argument(node, 0, "input"), argument(node, 1, "target")):
            return False
        return self._is_module(node.func)

    def _is_module(self, node: Value) -> bool:
        if isinstance(node, cst.Call):
            return self._resolve(node.func) in DISTANCE_MODULES
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_module)
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value == "self"
        ):  # what the project's classes store in attributes of this name
            held = self.context.project.classes_held_in(node.attr.value)
            return bool(held) and held <= _MODULE_CLASSES
        return False

    def _is_identity_fisher(self, node: cst.Call) -> bool:
        """``fisher_distance(a, b, torch.ones_like(a))``, ``diagonal_fisher_distance(a, b,
        fisher_diagonal=ones)``: the identity metric, passed after the two basins."""
        name = self.context.code_for(node.func).rsplit(".", 1)[-1]
        called = set(words(name))
        if "fisher" not in called or not called & DISTANCE_WORDS:
            return False
        positional, keywords = call_args(node)
        metrics = [*positional[2:], *keywords.values()]
        operands = positional[:2]
        return any(self._is_ones(m) for m in metrics) and self._has_basin_operand(*operands)

    def _is_ones(self, node: Value) -> bool:
        if isinstance(node, cst.Call):
            return self._resolve(node.func) in ONES_FUNCTIONS
        if isinstance(node, cst.Name):
            return self.values.follow(node.value, self._is_ones)
        return False


_SCALARS = frozenset({"mean", "sum", "max", "min", "median", "std", "var", "norm", "item"})
_MODULE_TEXT = re.compile("|".join(sorted(_MODULE_CLASSES)))
# Where a cosine bound to ``{name}`` becomes a distance (reported there) or feeds a slerp.
_USES_OF_A_COSINE = (
    r"\b(?:acos|arccos|sqrt|clip|clamp|float|max|min)\s*\([^\n]*\b{name}\b"
    r"|(?<![\w.])[12](?:\.0*)?\s*-\s*(?:2(?:\.0*)?\s*\*\s*)?{name}\b"
    r"|\b{name}\s*\.\s*(?:acos|arccos|clamp|clip)\b"
)
_TRIG = frozenset({"sin", "cos", "sinh", "cosh", "tan"})  # what a slerp does with an angle
# Methods after which a cosine is still that cosine, or a difference of basins that difference.
_KEEPS_A_COSINE = VALUE_KEEPING_METHODS | {"clamp", "clip", "item"}
_KEEPS_A_DIFFERENCE = VALUE_KEEPING_METHODS | {"abs"}


def _euclidean_order(order: cst.BaseExpression | None) -> bool:
    """No order, ``2`` or ``"fro"``: the Euclidean norm."""
    if order is None or number_value(order) == 2:
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


def _unwrap(value: Value) -> Value:
    """``x`` of ``float(x)`` and ``x.item()``."""
    if isinstance(value, cst.Call):
        func = value.func
        if isinstance(func, cst.Name) and func.value == "float" and len(value.args) == 1:
            return value.args[0].value
        if isinstance(func, cst.Attribute) and func.attr.value == "item" and not value.args:
            return func.value
    return value


def _use_role(name: cst.Name, parents: tuple[cst.CSTNode, ...]) -> str | None:
    """``"divisor"`` in ``v / name`` or ``v / (name + eps)`` (not ``1 / (1 + name)``),
    ``"compare"`` in a comparison, else ``None``."""
    parent = parents[-1]
    if isinstance(parent, (cst.Comparison, cst.ComparisonTarget)):
        return "compare"
    if isinstance(parent, cst.BinaryOperation) and isinstance(parent.operator, cst.Add):
        name_or_sum: cst.CSTNode = parent
        parent = parents[-2] if len(parents) > 1 else parent
    else:
        name_or_sum = name
    if (
        isinstance(parent, cst.BinaryOperation)
        and isinstance(parent.operator, cst.Divide)
        and parent.right is name_or_sum
        and number_value(parent.left) is None
    ):
        return "divisor"
    return None
