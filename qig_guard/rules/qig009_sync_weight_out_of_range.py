"""QIG009: a literal basin sync weight outside the configured range."""

from __future__ import annotations

import ast
import itertools
import re
from functools import lru_cache

import libcst as cst

from qig_guard.config import Config
from qig_guard.names import matches, matches_any, text_pattern
from qig_guard.resolve import dotted_name
from qig_guard.rules.base import Invalid, Rule

_SYNC_WEIGHT = "sync_weight*"
# Trigger texts. A literal is `-(0.5)`, `(+2)`, `1e-3`, `0x1`; gaps may hold comments.
# Gaps are atomic (what follows one never starts with a space or `#`): linear time.
_COMMENT = r"#[^\n]*"
_ATOMIC_GROUPS = itertools.count()


def _atomic(body: str) -> str:
    """``(?>body)`` for Python 3.10 (atomic groups need 3.11): a lookahead captures
    the longest match and a backreference consumes exactly it, without backtracking."""
    name = f"atomic{next(_ATOMIC_GROUPS)}"
    return rf"(?=(?P<{name}>{body}))(?P={name})"


_SPACES = rf"(?:[\s\\]|{_COMMENT})*"
_SIGNS = rf"(?:[-+(\s\\]|{_COMMENT})*"


def _gap() -> str:
    return _atomic(_SPACES)


def _literal() -> str:
    return (
        rf"(?P<sign>{_atomic(_SIGNS)})"
        r"(?P<number>0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d[\d_]*)?[jJ]?)"
    )


# `sync_weight=W`, `sync_weight: float = W`, `x = cfg.sync_weight = W`, `"sync-weight": W`.
_NAMED = re.compile(
    rf"(?i:sync[_-]?weight)\w*[\"']?{_gap()}"
    rf"(?::|(?::[^=]*?)?=(?!=)(?:{_gap()}[\w.]+{_gap()}=(?!=))*){_literal()}"
)
_DEFAULT = re.compile(rf"default{_gap()}={_literal()}")
# `b + W * (a - b)` and `b + (a - b) * W`: a hand-written lerp.
_WEIGHT_FIRST = re.compile(rf"\+{_literal()}(?:{_gap()}\))*{_gap()}\*{_gap()}\(")
_WEIGHT_LAST = re.compile(rf"\)(?:{_gap()}\))*{_gap()}\*{_literal()}")
_LERP = re.compile(r"lerp_?\b")


@lru_cache(maxsize=8)
def _basin_text(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(text_pattern(names))


def _outside(match: re.Match[str], low: float, high: float) -> bool:
    """Could the literal ``match`` found be outside ``[low, high]``?"""
    number = match.group("number").replace("_", "")
    if number[-1] in "jJ":
        return False  # complex: not a weight the rule reads
    try:
        value = float(int(number, 0)) if number[:2].lower() in ("0x", "0o", "0b") else float(number)
    except ValueError:
        return True
    signs = [c for c in re.sub(_COMMENT, "", match.group("sign")) if c in "+-"]
    if len(signs) > 1:
        return True  # `- -0.5`: not a literal the rule reads, but stay on the safe side
    if signs == ["-"]:
        value = -value
    return not low <= value <= high


def _positions(source: str, words: tuple[str, ...]) -> list[int]:
    found = []
    for word in words:
        hit = source.find(word)
        while hit != -1:
            found.append(hit)
            hit = source.find(word, hit + 1)
    return found


def _number(node: cst.BaseExpression) -> float | None:
    """The value of an int/float literal, optionally negated or parenthesised."""
    inner = node.expression if isinstance(node, cst.UnaryOperation) else node
    if not isinstance(inner, (cst.Integer, cst.Float)):
        return None
    if isinstance(node, cst.UnaryOperation) and not isinstance(
        node.operator, (cst.Minus, cst.Plus)
    ):
        return None
    value = ast.literal_eval(cst.Module([]).code_for_node(node).strip())
    return float(value) if isinstance(value, (int, float)) else None


def _is_sync_weight(identifier: str | None) -> bool:
    return identifier is not None and matches(identifier.rsplit(".", 1)[-1], _SYNC_WEIGHT)


class SyncWeightOutOfRange(Rule):
    """
    ## What it does
    Flags a literal sync weight outside `sync-weight-range` (default
    `[0.05, 0.1]`, inclusive): a `sync_weight=0.5` keyword argument, a
    `sync_weight: float = 0.5` parameter default or dataclass field, an
    assignment `SYNC_WEIGHT = 0.5`, a `{"sync_weight": 0.5}` config entry, the
    default of an `add_argument("--sync-weight", default=0.5)` option,
    and the interpolation weight of `torch.lerp(obs_basin, active_basin, 0.9)`,
    `obs_basin.lerp_(active_basin, 0.9)` or `obs_basin + 0.9 * (active_basin -
    obs_basin)` on basins. Weights that are not literals are not flagged.

    ## Why is this bad
    In constellation sync each observer moves a small step toward the active
    basin (vicarious learning). A large weight makes observers copies of the
    active model, so the constellation loses the diversity it exists for, and
    a weight above 1 or below 0 overshoots or pushes away.

    ## Example
    ```python
    ocean_basin, observer_basins = sync_constellation_basins(
        active_basin, observer_basins, ocean_basin, sync_weight=0.5
    )
    ```

    ## Use instead
    ```python
    ocean_basin, observer_basins = sync_constellation_basins(
        active_basin, observer_basins, ocean_basin, sync_weight=0.1
    )
    ```
    """

    code = "QIG009"
    name = "sync-weight-out-of-range"
    summary = "a literal basin sync weight is outside the configured range (0.05-0.1)"
    INVALID = (
        Invalid(
            "sync_constellation_basins(active_basin, observers, ocean_basin, sync_weight=0.5)\n"
        ),
        Invalid(
            "def sync_basins(active_basin, observer_basins, sync_weight: float = 1):\n    ...\n"
        ),
        Invalid("import torch\n\nobs_basin = torch.lerp(obs_basin, active_basin, 0.9)\n"),
    )
    VALID = (
        "sync_constellation_basins(active_basin, observers, ocean_basin, sync_weight=0.1)\n",
        "def sync_basins(active_basin, observer_basins, sync_weight: float = 0.05):\n    ...\n",
        "sync_basins(active_basin, observers, sync_weight=args.sync_weight)\n",
        "import torch\n\nweights = torch.lerp(old_weights, new_weights, 0.9)\n",
    )

    @classmethod
    def could_match(cls, source: str, config: Config) -> bool:
        """A literal out of range after a sync weight name (or in the `default=` of
        a call naming one), or a lerp or hand-written interpolation in a file
        naming basins."""
        low, high = config.sync_weight_range
        options = "add_argument" in source
        for hit in _positions(source, ("sync", "Sync", "SYNC")):
            named = _NAMED.match(source, hit)
            if named is not None and _outside(named, low, high):
                return True
            if options:  # `add_argument("--sync-weight", ..., default=W)`
                end = source.find("add_argument", hit)
                window = _DEFAULT.finditer(source, hit, len(source) if end == -1 else end)
                if any(_outside(default, low, high) for default in window):
                    return True
        interpolates = any(
            _LERP.match(source, hit) for hit in _positions(source, ("lerp",))
        ) or any(
            _outside(match, low, high)
            for pattern in (_WEIGHT_FIRST, _WEIGHT_LAST)
            for match in pattern.finditer(source)
        )
        return interpolates and _basin_text(config.basin_names).search(source) is not None

    def _check(self, value: cst.BaseExpression | None, what: str) -> None:
        number = _number(value) if value is not None else None
        low, high = self.config.sync_weight_range
        if value is None or number is None or low <= number <= high:
            return
        self.report(
            value,
            f"{what} {self.context.code_for(value).strip()} is outside the sync weight range "
            f"[{low:g}, {high:g}]; observers take a small step toward the active basin",
        )

    def _is_basin(self, node: cst.BaseExpression) -> bool:
        dotted = dotted_name(node)
        return dotted is not None and matches_any(
            dotted.rsplit(".", 1)[-1], self.config.basin_names
        )

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None and _is_sync_weight(node.keyword.value):
            self._check(node.value, f"`{node.keyword.value}=`")

    def visit_Param(self, node: cst.Param) -> None:
        if _is_sync_weight(node.name.value):
            self._check(node.default, f"default of `{node.name.value}`")

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            name = dotted_name(target.target)
            if _is_sync_weight(name):
                self._check(node.value, f"`{name}`")

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
        if self.context.qualified_name(func) == "torch.lerp":
            ends = positional[:2] + [keywords[k] for k in ("input", "end") if k in keywords]
            weight = positional[2] if len(positional) > 2 else keywords.get("weight")
        elif isinstance(func, cst.Attribute) and func.attr.value in ("lerp", "lerp_"):
            ends = [func.value, *positional[:1], *[v for k, v in keywords.items() if k == "end"]]
            weight = positional[1] if len(positional) > 1 else keywords.get("weight")
        else:
            return
        if any(self._is_basin(end) for end in ends):
            self._check(weight, "lerp weight")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        """``obs + w * (active - obs)``: a hand-written lerp on basins."""
        if not isinstance(node.operator, cst.Add) or not isinstance(
            node.right, cst.BinaryOperation
        ):
            return
        start, step = dotted_name(node.left), node.right
        if start is None or not isinstance(step.operator, cst.Multiply):
            return
        for weight, direction in ((step.left, step.right), (step.right, step.left)):
            if (
                isinstance(direction, cst.BinaryOperation)
                and isinstance(direction.operator, cst.Subtract)
                and dotted_name(direction.right) == start
                and (self._is_basin(node.left) or self._is_basin(direction.left))
            ):
                self._check(weight, "interpolation weight")
