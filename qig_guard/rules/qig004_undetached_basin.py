"""QIG004: an active or Ocean basin feeds another model's update without ``.detach()``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.facts.kinds import NOT_TENSORS, ast_kind, numpy_only
from qig_guard.facts.torch_api import DETACHING, GRADIENT_KEEPING_METHODS, disables_gradients
from qig_guard.facts.vocabulary import NOT_A_VECTOR
from qig_guard.facts.words import matches, matches_any, words
from qig_guard.rules.base import FileContext, Invalid, Rule
from qig_guard.rules.gates import Named


class UndetachedBasin(Rule):
    """
    ## What it does
    Flags an active or Ocean basin that is read without `.detach()` where it
    feeds another model's update:

    - arithmetic with an observer's basin: `direction = active_basin - obs_basin`,
      `obs_basin += sync_weight * active.basin`, `obs_basin.lerp_(active_basin, w)`;
    - a loss helper (`*_loss(...)`, `fisher_distance(...)`, `geodesic_*(...)`):
      `loss = fisher_distance(obs_basin, active_basin)`;
    - any arithmetic, loss or in-place use of the Ocean's basin, and reading it
      into a variable: `ocean_basin = ocean.basin`.

    A basin is recognised by name (`basin-names`) together with its owner
    (`active-models`, `frozen-models`): `active_basin`, `active_gary.basin`,
    `self.ocean.basin_matcher.current_basin`, also through a local variable
    (`target = active.basin`) and gradient-keeping calls (`.clone()`, `.to(device)`).

    Not flagged: values already detached (`.detach()`, `.detach().clone()`, `.data`),
    code inside `with torch.no_grad()` / `torch.inference_mode()` /
    `torch.set_grad_enabled(False)` or a function
    decorated with them, locals computed under them earlier in the function, the
    observer's own basin, and an active model's basin in its own loss against its
    target basin.

    ## Why is this bad
    Without `.detach()`, the observer's loss back-propagates into the active
    model (or into the frozen Ocean), so vicarious learning silently trains
    the model it is only meant to learn from, and the Ocean stops being frozen.

    ## Example
    ```python
    ocean_basin = ocean.basin
    for obs_basin in observer_basins:
        direction = active_basin - obs_basin
    ```

    ## Use instead
    ```python
    ocean_basin = ocean.basin.detach().clone()  # FROZEN
    for obs_basin in observer_basins:
        direction = active_basin.detach() - obs_basin  # Detach active!
    ```

    ## Fix safety
    The fix appends `.detach()` to the read. It is safe for the Ocean's basin:
    values are unchanged and the frozen model must receive no gradient. It is
    unsafe for an active basin: when the losses are summed into one backward
    pass, the active model stops receiving the observer's gradient, which is
    the intent but changes training.
    """

    code = "QIG004"
    name = "undetached-basin"
    summary = "an active or Ocean basin feeds another model's update without .detach()"
    gate = Named("basin_names", project=True) & Named("active_models", "frozen_models")
    INVALID = (
        Invalid(
            "direction = active_basin - obs_basin\n",
            fixed="direction = active_basin.detach() - obs_basin\n",
            unsafe=True,
        ),
        Invalid("ocean_basin = ocean.basin\n", fixed="ocean_basin = ocean.basin.detach()\n"),
        Invalid(
            "loss = fisher_distance(obs_basin, active_basin)\n",
            fixed="loss = fisher_distance(obs_basin, active_basin.detach())\n",
            unsafe=True,
        ),
        Invalid(
            "target = active_gary.basin\nobs_basin = obs_basin + 0.1 * (target - obs_basin)\n",
            fixed=(
                "target = active_gary.basin\n"
                "obs_basin = obs_basin + 0.1 * (target.detach() - obs_basin)\n"
            ),
            unsafe=True,
        ),
        Invalid(
            "loss = basin_proximity_loss(model.current_basin, ocean.basin.clone())\n",
            fixed=(
                "loss = basin_proximity_loss(model.current_basin, ocean.basin.detach().clone())\n"
            ),
        ),
    )
    VALID = (
        "ocean_basin_updated = ocean_basin.detach().clone()\n",
        "direction = active_basin.detach() - obs_basin\n",
        "import torch\nwith torch.no_grad():\n    direction = active_basin - obs_basin\n",
        "import torch\n"
        "@torch.no_grad()\n"
        "def sync(active, obs_basin):\n"
        "    return obs_basin + 0.1 * (active.basin - obs_basin)\n",
        "obs_basin_new = obs_basin + sync_weight * direction\n",
        "loss = fisher_distance(active.basin_matcher.current_basin, target_basin)\n",
        "import torch\n"
        "with torch.no_grad():\n"
        "    target = active.basin\n"
        "direction = target - obs_basin\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self._frames = [_Frame()]
        self._with_no_grad: list[bool] = []
        self._done: set[int] = set()  # binary operations already checked, reported reads
        self._tensor_module: bool | None = None

    # -- what expressions hold -----------------------------------------------

    def _basin_name(self, dotted: str) -> bool:
        """Whether the last part of ``dotted`` names a basin tensor (not ``basin_dim``)."""
        last = dotted.rsplit(".", 1)[-1]
        return (
            matches_any(last, self.config.basin_names)
            and not matches_any(last, self.config.basin_owners)
            and words(last)[-1] not in NOT_A_VECTOR
        )

    def _tensor_file(self) -> bool:
        """Whether this module may hold torch tensors (it is not NumPy-only)."""
        if self._tensor_module is None:
            self._tensor_module = not numpy_only(self.context.source)
        return self._tensor_module

    def _role(self, node: cst.BaseExpression) -> Role | None:
        """Whose undetached basin ``node`` holds, if an active or frozen model's and a
        value that can carry a gradient (not a NumPy array or a list)."""
        node, detached = _unwrap(node)
        if detached or not self._tensor_file():
            return None
        if isinstance(node, cst.Name) and node.value in self._frames[-1].names:
            state = self._frames[-1].names[node.value]
            return state if isinstance(state, Role) else None
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if not self._basin_name(node.func.attr.value):  # `ocean.compute_basin(x)`
                return None
            node = node.func.value
        elif not self._basin_name(dotted_name(node) or ""):
            return None
        dotted = dotted_name(node)
        if dotted is None or self.context.project.never_tensor(dotted.rsplit(".", 1)[-1]):
            return None
        if matches_any(dotted, self.config.frozen_models):
            return Role.FROZEN
        if matches_any(dotted, self.config.active_models):
            return Role.ACTIVE
        return None

    def _other_basin(self, node: cst.BaseExpression) -> bool:
        """An observer's (or any third model's) basin: not active, frozen or a target."""
        node, _ = _unwrap(node)
        while isinstance(node, cst.Subscript):
            node = node.value
        dotted = dotted_name(node)
        if dotted is None or not self._basin_name(dotted):
            return False
        config = self.config
        return not (
            matches_any(dotted, config.active_models + config.frozen_models)
            or matches(dotted.rsplit(".", 1)[-1], config.protected_attribute)
            or (isinstance(node, cst.Name) and isinstance(self._frames[-1].names.get(dotted), Role))
        )

    def _no_grad(self) -> bool:
        return self._frames[-1].no_grad > 0

    def _makes_no_tensor(self, value: cst.BaseExpression) -> bool:
        """``np.asarray(ocean.basin)``, ``[*ocean.basin]``: the result carries no gradient."""
        try:
            parsed = ast.parse(self.context.code_for(value).strip(), mode="eval").body
        except (SyntaxError, ValueError, RecursionError):
            return False
        kind = ast_kind(parsed)
        return kind is not None and kind in NOT_TENSORS

    # -- reporting -------------------------------------------------------------

    def _check_group(
        self, leaves: list[cst.BaseExpression], updated: cst.BaseExpression | None = None
    ) -> None:
        """Report the active and frozen reads among ``leaves``, values combined into one
        update (of ``updated``, for in-place updates)."""
        if self._no_grad() or any(isinstance(leaf, cst.BaseString) for leaf in leaves):
            return  # no gradient, or string formatting
        others = leaves if updated is None else [updated, *leaves]
        with_other = any(self._other_basin(leaf) for leaf in others)
        for leaf in leaves:
            role = self._role(leaf)
            if role is Role.FROZEN or (role is Role.ACTIVE and with_other):
                self._report_read(_unwrap(leaf)[0], role)

    def _report_read(self, read: cst.BaseExpression, role: Role) -> None:
        if id(read) in self._done:
            return
        self._done.add(id(read))
        whose = "the frozen Ocean's" if role is Role.FROZEN else "an active model's"
        self.report(
            read,
            f"{whose} basin is used without `.detach()`; gradients flow back into it",
            replacement=cst.Call(
                cst.Attribute(read.with_changes(lpar=(), rpar=()), cst.Name("detach"))
            ),
            fix_description="Append `.detach()`",
            safe=role is Role.FROZEN,
        )

    def _arithmetic(self, node: cst.BaseExpression) -> list[cst.BaseExpression]:
        """The leaves of ``node``, marking its binary operations as checked."""
        leaves = []
        for leaf in _leaves(node):
            if isinstance(leaf, cst.BinaryOperation):
                self._done.add(id(leaf))
            else:
                leaves.append(leaf)
        return leaves

    # -- scopes and no_grad ----------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        decorated = any(disables_gradients(self.context, d.decorator) for d in node.decorators)
        self._frames.append(_Frame(no_grad=int(decorated)))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._frames.pop()

    def visit_With(self, node: cst.With) -> None:
        entered = any(disables_gradients(self.context, item.item) for item in node.items)
        self._with_no_grad.append(entered)
        self._frames[-1].no_grad += entered

    def leave_With(self, original_node: cst.With) -> None:
        self._frames[-1].no_grad -= self._with_no_grad.pop()

    # -- sinks -----------------------------------------------------------------

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if id(node) not in self._done:
            self._check_group(self._arithmetic(node))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check_group(self._arithmetic(node.value), updated=node.target)

    def visit_Call(self, node: cst.Call) -> None:
        callee = dotted_name(node.func)
        if callee is not None and self._loss_helper(callee.rsplit(".", 1)[-1]):
            self._check_group([leaf for arg in node.args for leaf in self._arithmetic(arg.value)])
        elif isinstance(node.func, cst.Attribute) and self._in_place(node.func.attr.value):
            arguments = [leaf for arg in node.args for leaf in self._arithmetic(arg.value)]
            self._check_group(arguments, updated=node.func.value)

    @staticmethod
    def _loss_helper(name: str) -> bool:
        return matches_any(name, _LOSS_HELPERS) or words(name)[:1] == ("geodesic",)

    @staticmethod
    def _in_place(name: str) -> bool:
        return name.endswith("_") and not name.startswith("_") and name != "requires_grad_"

    def visit_Assign(self, node: cst.Assign) -> None:
        self._check_read(node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._check_read(node.value)

    def _check_read(self, value: cst.BaseExpression) -> None:
        """``ocean_basin = ocean.basin``: the frozen basin read into a variable."""
        read, detached = _unwrap(value)
        if (
            not detached
            and not self._no_grad()
            and isinstance(read, cst.Attribute)
            and self._role(read) is Role.FROZEN
        ):
            self._report_read(read, Role.FROZEN)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        for target in original_node.targets:
            self._bind(target.target, original_node.value)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        if original_node.value is not None:
            self._bind(original_node.target, original_node.value)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target, None)

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        """Record what a local name now holds."""
        names = self._frames[-1].names
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind(element.value, None)
            return
        if not isinstance(target, cst.Name):
            return
        name = target.value
        if value is None:
            names.pop(name, None)
            return
        read, detached = _unwrap(value)
        role = None if detached or self._no_grad() else self._role(read)
        if role is not None and self._makes_no_tensor(value):
            role = None
        if role is not None and not (isinstance(read, cst.Attribute) and role is Role.FROZEN):
            names[name] = role
        else:  # detached, computed from something else, or reported where it was read
            names[name] = _Clean.CLEAN


_LOSS_HELPERS = ("*_loss", "fisher_distance")


class Role(Enum):
    """Whose basin an expression holds."""

    ACTIVE = "active"
    FROZEN = "frozen"


class _Clean(Enum):
    """A local whose value is known to carry no active or frozen gradient."""

    CLEAN = "clean"


_State = Role | _Clean


@dataclass
class _Frame:
    """One function's state: no-grad nesting and what its locals hold."""

    no_grad: int = 0
    names: dict[str, _State] = field(default_factory=dict)


def _unwrap(node: cst.BaseExpression) -> tuple[cst.BaseExpression, bool]:
    """The value under gradient-keeping calls (``x`` for ``x.clone().to(d)``), and
    whether it was detached on the way (``x.detach().clone()``)."""
    while True:
        if isinstance(node, cst.Attribute) and node.attr.value in DETACHING:
            return node, True
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            if method in DETACHING:
                return node, True
            if method in GRADIENT_KEEPING_METHODS:
                node = node.func.value
                continue
        return node, False


def _leaves(node: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    """The operands of an arithmetic expression, and the binary operations inside it."""
    if isinstance(node, cst.BinaryOperation):
        yield node
        yield from _leaves(node.left)
        yield from _leaves(node.right)
    elif isinstance(node, cst.UnaryOperation):
        yield from _leaves(node.expression)
    else:
        yield node
