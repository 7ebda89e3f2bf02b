"""QIG009: a basin sync weight (named, or of an interpolation toward another model's basin)
outside the configured range."""

from __future__ import annotations

import re

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.facts.vocabulary import OTHER_MODEL_WORDS, OWN_BASIN_WORDS
from qig_guard.facts.words import matches, matches_any, words
from qig_guard.rules._basin_values import (
    BasinRule,
)
from qig_guard.rules._interpolation import (
    INTERPOLATION_WORDS,
    Interpolation,
    binary_interpolation,
    call_interpolation,
    imported_constant,
    module_file,
    number,
    value_of,
)
from qig_guard.rules.base import FileContext, Invalid
from qig_guard.rules.gates import (
    Binary,
    Calls,
    Named,
    NumberOutside,
    Pattern,
    WeightedSum,
    Words,
)

# What the gate needs (evaluated when the class is created).
# A basin-ish attribute of an object other than `self` (`peer.basin`).
_PLUS = Binary("+", r"[\w(.]")
_TIMES = Binary("*", r"[\w(.]")
# What ``_is_sync_weight`` matches, read as text: the words `sync` then `weight*` with no
# ASCII letter or digit between (`sync_weight`, `SyncWeights`, `"--sync-weight"`).
_SYNC_WEIGHT_TEXT = re.compile(r"[Ss][Yy][Nn][Cc][^A-Za-z0-9]*[Ww][Ee][Ii][Gg][Hh][Tt]")
_OTHER_OWNER = re.compile(r"(?<![\w.])(?!self\b)[A-Za-z_]\w*[ \t]*\.[ \t]*\w*(?i:basin|attractor)")


class SyncWeightOutOfRange(BasinRule):
    """
    ## What it does
    Flags a basin sync weight outside `sync-weight-range` (default
    `[0.05, 0.1]`, inclusive) in two forms.

    A named sync weight set to a literal: a `sync_weight=0.5` keyword argument,
    a `sync_weight: float = 0.5` parameter default or dataclass field, an
    assignment `SYNC_WEIGHT = 0.5`, a `{"sync_weight": 0.5}` config entry, or
    the default of an `add_argument("--sync-weight", default=0.5)` option.

    An interpolation of a basin toward another model's basin, whatever its
    coefficient is called: `torch.lerp(own, other, w)`, `own.lerp_(other, w)`,
    a helper `slerp(own, other, t)` / `geodesic_interpolate(...)` /
    `blend(...)`, `own + w * (other - own)` (also through a `direction`
    name) and the weighted sum `(1 - w) * own + w * other`. Its weight counts
    when it evaluates to a literal: inline, a parameter's default, a local or
    module constant, a constant imported from a module of the same project,
    or a complement (`KEEP = 0.8` in `KEEP * own + (1 - KEEP) * other` is
    0.2 toward the other). The end is another model's basin when it is named
    for one (`other_basin`, `remote_basin`, `peer.basin`, an `active-models`
    name) or is the basin of a different object than the start
    (`absorber.basin` toward `victim.basin`). A basin moving toward its own
    target, anchor or history, an input or response, entries of one table
    recombined, and weights that are not literals are not flagged.

    ## Why is this bad
    In constellation sync each observer moves a small step toward the active
    basin (vicarious learning). A large weight makes observers copies of the
    active model, so the constellation loses the diversity it exists for, and
    a weight above 1 or below 0 overshoots or pushes away.

    ## Example
    ```python
    BASIN_SYNC_WEIGHT = 0.5

    def receive_sync(self, remote_basin):
        self.basin = slerp(self.basin, remote_basin, BASIN_SYNC_WEIGHT)
    ```

    ## Use instead
    ```python
    BASIN_SYNC_WEIGHT = 0.1

    def receive_sync(self, remote_basin):
        self.basin = slerp(self.basin, remote_basin, BASIN_SYNC_WEIGHT)
    ```
    """

    code = "QIG009"
    name = "sync-weight-out-of-range"
    summary = (
        "a basin sync weight (named, or of an interpolation toward another model's basin) "
        "is outside the configured range (0.05-0.1)"
    )
    # A literal weight beside a sync name, or an interpolation (`own + w * (other - own)`,
    # a blend helper) of a basin that may be another model's.
    # A weighted sum (`own + w * (other - own)`, `c1 * own + c2 * other`), not `**kwargs`
    # or `x += 1` alone: the shapes ``binary_interpolation`` reads, in CPython's tree.
    gate = (Words("sync") & Pattern(_SYNC_WEIGHT_TEXT) & NumberOutside("sync_weight_range")) | (
        Named("basin_names", project=True)
        & (
            (_PLUS & _TIMES & WeightedSum())
            | (Words(*INTERPOLATION_WORDS) & Calls(*INTERPOLATION_WORDS))
        )
        & (Words(*OTHER_MODEL_WORDS) | Named("active_models") | Pattern(_OTHER_OWNER))
    )
    INVALID = (
        Invalid(
            "sync_constellation_basins(active_basin, observers, ocean_basin, sync_weight=0.5)\n"
        ),
        Invalid(
            "def sync_basins(active_basin, observer_basins, sync_weight: float = 1):\n    ...\n"
        ),
        Invalid("import torch\n\nobs_basin = torch.lerp(obs_basin, active_basin, 0.9)\n"),
        Invalid(
            "KEEP = 0.8\n\n"
            "def mix(self, peer):\n"
            "    self.basin = KEEP * self.basin + (1 - KEEP) * peer.basin\n"
        ),
        Invalid(
            "def fuse(self_basin, other_basin, depth=0.9):\n"
            "    return slerp(self_basin, other_basin, depth)\n"
        ),
    )
    VALID = (
        "sync_constellation_basins(active_basin, observers, ocean_basin, sync_weight=0.1)\n",
        "def sync_basins(active_basin, observer_basins, sync_weight: float = 0.05):\n    ...\n",
        "sync_basins(active_basin, observers, sync_weight=args.sync_weight)\n",
        "import torch\n\nweights = torch.lerp(old_weights, new_weights, 0.9)\n",
        "def step(self, target_basin):\n    self.basin = slerp(self.basin, target_basin, 0.5)\n",
        "def entrain(self_basin, other_basin, strength=0.1):\n"
        "    return slerp(self_basin, other_basin, strength)\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self._imported: dict[str, tuple[str, int, str]] | None = None
        self._reported_value: str | None = None
        self._resolving = 0
        self._assigned: list[str] = []  # the targets of the assignments being visited

    def _check(self, value: cst.BaseExpression | None, what: str) -> None:
        number_value = number(value) if value is not None else None
        low, high = self.config.sync_weight_range
        if value is None or number_value is None or low <= number_value <= high:
            return
        self.report(
            value,
            f"{what} {self.context.code_for(value).strip()} is outside the sync weight range "
            f"[{low:g}, {high:g}]; observers take a small step toward the active basin",
        )

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None and _is_sync_weight(node.keyword.value):
            self._check(node.value, f"`{node.keyword.value}=`")

    def visit_Param(self, node: cst.Param) -> None:
        if _is_sync_weight(node.name.value):
            self._check(node.default, f"default of `{node.name.value}`")

    def visit_Assign(self, node: cst.Assign) -> None:
        self._assigned.append(dotted_name(node.targets[-1].target) or "")
        for target in node.targets:
            name = dotted_name(target.target)
            if _is_sync_weight(name):
                self._check(node.value, f"`{name}`")

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._assigned.pop()

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        name = dotted_name(node.target)
        if _is_sync_weight(name):
            self._check(node.value, f"`{name}`")

    def visit_DictElement(self, node: cst.DictElement) -> None:
        key = node.key
        if isinstance(key, cst.SimpleString) and _is_sync_weight(key.raw_value):
            self._check(node.value, f"`{key.value}`")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
        if isinstance(func, cst.Attribute) and func.attr.value == "add_argument":
            flags = [a.raw_value for a in positional if isinstance(a, cst.SimpleString)]
            for flag in flags:
                if _is_sync_weight(flag.lstrip("-")):
                    self._check(keywords.get("default"), f"default of `{flag}`")
                    break
            return
        interpolation = call_interpolation(node, self.context.qualified_name(func) == "torch.lerp")
        if interpolation is not None:
            self._check_interpolation(interpolation)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        """``own + w * (other - own)`` and ``c1 * own + c2 * other`` on basins."""
        if not isinstance(node.operator, cst.Add):
            return
        interpolation = binary_interpolation(node, self._bound_once, self._is_basin)
        if interpolation is not None:
            self._check_interpolation(interpolation)

    # -- interpolations toward another model's basin ------------------------------

    def _check_interpolation(self, found: Interpolation) -> None:
        start, end = found.start, found.end
        if not self._is_basin(start) or not self._is_basin(end) or _same_value(start, end):
            return
        readings = [(start, end, found.weight)]
        if found.start_weight is not None:  # `0.8 * own + 0.2 * other`, either way round
            readings.append((end, start, found.start_weight))
            readings.sort(key=lambda reading: _owner(_unwrapped(reading[0])) != "self")
            assigned = [r for r in readings if dotted_name(r[0]) in self._assigned[-1:]]
            readings = assigned or readings  # `x = 0.9 * x + 0.1 * y` moves `x`
        toward_other = [r for r in readings if self._toward_other(r[0], r[1])]
        if not toward_other or (weight := toward_other[0][2]) is None:
            return
        start, end = toward_other[0][0], toward_other[0][1]
        self._reported_value = None
        value = value_of(weight, self._resolve)
        low, high = self.config.sync_weight_range
        if value is None or low <= value <= high:
            return
        origin = f" ({self._reported_value})" if self._reported_value else ""
        self.report(
            weight,
            f"`{self.context.code_for(start).strip()}` moves toward another model's basin "
            f"`{self.context.code_for(end).strip()}` with weight {value:g}{origin}, outside "
            f"the sync weight range [{low:g}, {high:g}]; observers take a small step",
        )

    def _is_basin(self, node: cst.BaseExpression, depth: int = 0) -> bool:
        """A basin, or the result of interpolating between two (``blend = slerp(a, b, t)``)."""
        if self.values.is_basin(node):  # `peer.get_basin()`, `basin.detach()`
            return True
        node = _unwrapped(node)
        if self.values.is_basin(node):  # `to_simplex(basin)`
            return True
        if isinstance(node, cst.Name) and depth < 2:
            bound = self._bound_once(node.value)
            found = call_interpolation(bound, False) if isinstance(bound, cst.Call) else None
            return found is not None and all(
                self._is_basin(end, depth + 1) for end in (found.start, found.end)
            )
        return False

    def _toward_other(
        self, start: cst.BaseExpression, end: cst.BaseExpression, depth: int = 0
    ) -> bool:
        """Is ``end`` another model's basin, seen from ``start``: named for another model
        (``other_basin``, ``peer.basin``, ``active_basin``), or an attribute of a different
        owner than ``start`` (``victim.basin`` from ``absorber.basin``), directly or through
        a local bound once to one, and not the start's own target, history or an input
        (``self.target_basin``, ``prev``, ``input_basin``)."""
        end, start = _unwrapped(end), _unwrapped(start)
        if _same_collection(start, end):
            return False  # `slerp(parents[0], parents[1], t)`: recombining entries of one table
        end_name = dotted_name(end) or self.context.code_for(end)
        end_words = set(words(end_name)) - {"self"}
        if end_words & OWN_BASIN_WORDS:
            return False
        if end_words & OTHER_MODEL_WORDS or matches_any(end_name, self.config.active_models):
            return True
        end_owner, start_owner = _owner(end), _owner(start)
        if OWN_BASIN_WORDS & set(words(_name(start))):
            return False  # a target or anchor is where basins go, not what moves
        if end_owner is None:  # a local bound once: `theirs = peer.basin`
            bound = self._bound_once(end.value) if isinstance(end, cst.Name) else None
            return bound is not None and not depth and self._toward_other(start, bound, 1)
        # Two objects' basins (`absorber.basin`, `victim.basin`); a local start is a
        # trajectory or generation state more often than a model.
        return start_owner is not None and end_owner != start_owner

    def _bound_once(self, name: str) -> cst.BaseExpression | None:
        return self.values.single_value(name)

    def _resolve(self, name: cst.Name) -> float | None:
        """A name's literal value: a parameter's default, a local or module constant bound
        once, or a constant imported from a project module."""
        identifier = name.value
        functions = self.context.scopes.functions
        bound = self.values.bound_values(identifier) or []
        if functions:
            for param in _parameters(functions[-1]):
                if param.name.value == identifier:
                    if param.default is None or len(bound) != 1:
                        return None
                    self._reported_value = f"default of `{identifier}`"
                    return number(param.default)
        value = self.values.single_value(identifier)
        if value is not None:
            if self._resolving >= 8:
                return None
            self._resolving += 1
            try:
                found = value_of(value, self._resolve)
            finally:
                self._resolving -= 1
            if found is not None and self._reported_value is None:
                self._reported_value = f"`{identifier}`"
            return found
        imported = self._imports().get(identifier)
        if imported is None or len(bound) > 1:
            return None
        module, level, original = imported
        file = module_file(self.context.path, module, level)
        if file is None:
            return None
        self.context.reads(file)  # a cached result must not outlive an edit of it
        found = imported_constant(file, original)
        if found is not None and self._reported_value is None:
            self._reported_value = f"`{identifier}` from `{'.' * level}{module}`"
        return found

    def _imports(self) -> dict[str, tuple[str, int, str]]:
        """``name -> (module, level, imported name)`` of the module's ``from ... import``."""
        if self._imported is None:
            self._imported = {}
            for statement in self.context.module.body:
                if not isinstance(statement, cst.SimpleStatementLine):
                    continue
                for small in statement.body:
                    if not isinstance(small, cst.ImportFrom) or isinstance(
                        small.names, cst.ImportStar
                    ):
                        continue
                    module = dotted_name(small.module) if small.module is not None else ""
                    for alias in small.names:
                        original = dotted_name(alias.name)
                        bound = dotted_name(alias.asname.name) if alias.asname else original
                        if module is not None and original and bound:
                            self._imported[bound] = (module, len(small.relative), original)
        return self._imported


_SYNC_WEIGHT = "sync_weight*"


def _is_sync_weight(identifier: str | None) -> bool:
    return identifier is not None and matches(identifier.rsplit(".", 1)[-1], _SYNC_WEIGHT)


def _unwrapped(node: cst.BaseExpression) -> cst.BaseExpression:
    """``x`` for ``to_simplex(x)``, ``x.detach()``, ``np.asarray(x)``: one-argument
    calls and argument-less methods keep the value they are given."""
    while isinstance(node, cst.Call):
        args = [a for a in node.args if a.keyword is None]
        if len(node.args) == 1 and len(args) == 1 and not args[0].star:
            node = args[0].value
        elif not node.args and isinstance(node.func, cst.Attribute):
            node = node.func.value
        else:
            break
    return node


def _owner(node: cst.BaseExpression) -> str | None:
    """``self.ocean`` for ``self.ocean.basin``; ``None`` for a plain name."""
    if isinstance(node, cst.Subscript):
        node = node.value
    if isinstance(node, cst.Attribute):
        return dotted_name(node.value)
    return None


def _name(node: cst.BaseExpression) -> str:
    return dotted_name(_unwrapped(node)) or ""


def _same_collection(a: cst.BaseExpression, b: cst.BaseExpression) -> bool:
    if not isinstance(a, cst.Subscript) or not isinstance(b, cst.Subscript):
        return False
    return _same_value(a.value, b.value)


def _same_value(a: cst.BaseExpression, b: cst.BaseExpression) -> bool:
    first, second = dotted_name(_unwrapped(a)), dotted_name(_unwrapped(b))
    return first is not None and first == second


def _parameters(function: cst.FunctionDef) -> list[cst.Param]:
    p = function.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]
