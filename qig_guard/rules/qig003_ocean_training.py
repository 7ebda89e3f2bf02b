"""QIG003: the frozen (Ocean) model is being trained."""

from __future__ import annotations

from functools import lru_cache

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.facts.torch_api import (
    NOT_OPTIMIZER_MODULES,
    OPTIMIZER_MODULES,
    PARAMETER_ITERATORS,
    names_an_optimizer,
)
from qig_guard.facts.vocabulary import NOT_A_VECTOR
from qig_guard.facts.words import matches_any, words
from qig_guard.rules._basin_moves import (
    in_place_move,
    moves_toward,
    reads,
)
from qig_guard.rules.base import FileContext, Invalid, Rule, argument, positional_args
from qig_guard.rules.gates import Named


class OceanTraining(Rule):
    """
    ## What it does
    Flags code that trains the frozen model (the Ocean, configured with
    `frozen-models`):

    - an optimizer built over its parameters: `torch.optim.Adam(ocean.parameters())`,
      any `torch.optim` class or callee whose name ends in `optimizer`, also through
      `list(...)`, `itertools.chain(...)` and parameter-group lists;
    - `.step()` of an optimizer named for it (`ocean_optimizer.step()`,
      `self.ocean.optimizer.step()`, `scaler.step(ocean.optimizer)`) and
      `ocean.optimizer.load_state_dict(...)`: the frozen model has no optimizer at all;
    - `.backward()` of a loss named for it (`ocean_loss.backward()`,
      `scaler.scale(ocean_loss).backward()`, `(ocean_loss / accum).backward()`);
    - `ocean.train()`, `ocean.requires_grad_(True)`, and `p.requires_grad = True` or
      `p.requires_grad_()` in a loop over its parameters;
    - inside a class whose name marks it as the frozen model (`class OceanWatcher`):
      any optimizer construction, optimizer `.step()` or `load_state_dict`, and
      `.backward()`, even on `self.optimizer` and a plain `loss`;
    - the frozen model's basin moved toward other values, which trains it without
      an optimizer: a moving average or additive step
      (`ocean.basin = 0.95 * ocean.basin + 0.05 * mean`, `ocean.basin += w * (m -
      ocean.basin)`), a blend helper given it and another value
      (`slerp(ocean.basin, main, t=0.05)`, `torch.lerp(...)`, `geodesic_step(...)`,
      also through a local written back), or an in-place update
      (`ocean_basin.lerp_(m, 0.05)`, `ocean.basin_matcher.target_basin.mul_(0.9).add_(m)`,
      `.copy_(blend)`). Its basin is a basin-named attribute or local of the frozen
      model (`ocean.basin`, `ocean_basin`, `self.ocean.target_basin`), a local
      alias of one, or a basin-named attribute of `self` in the frozen model's class.

    Not flagged: `ocean.eval()`, `requires_grad_(False)`, forward passes,
    saving `ocean.optimizer.state_dict()`, methods that merely sound like updates
    (`ocean.epoch_update()`), schedulers, and optimizers or losses of active models
    inside an Ocean-named coordinator; reading or measuring the Ocean's basin
    (`fisher_distance(ocean.basin, m)`), setting, normalising or centring it by
    itself, moving a detached copy (`b = ocean.basin.detach().clone()`), and
    moving observers toward the Ocean.

    ## Why is this bad
    The Ocean is the constellation's frozen reference: it observes and measures,
    it never learns. Once it trains, every observer's basin drifts with it and
    the constellation loses its fixed point.

    ## Example
    ```python
    ocean_optimizer = torch.optim.Adam(ocean.parameters(), lr=1e-4)
    ocean.train()
    ocean_loss.backward()
    ocean_optimizer.step()  # Ocean trains!
    ```

    ## Use instead
    ```python
    ocean.eval()
    with torch.no_grad():
        ocean_basin = ocean.basin.detach().clone()  # Ocean has no optimizer
    ```

    ## Fix safety
    `ocean.train()` becomes `ocean.eval()` and `requires_grad_(True)` /
    `requires_grad = True` become `False`. These fixes are unsafe: they change
    dropout, normalisation and gradient behaviour, which is the point, but code
    that relied on it (and the optimizer still built over the frozen model) must
    be reviewed by hand. Optimizers, steps, backward passes and basin moves have no
    fix.
    """

    code = "QIG003"
    name = "ocean-training"
    summary = (
        "the frozen Ocean model is trained: optimizer, step, backward, train mode or a basin move"
    )
    gate = Named("frozen_models")
    INVALID = (
        Invalid("import torch\nocean_optimizer = torch.optim.Adam(ocean.parameters(), lr=1e-4)\n"),
        Invalid("ocean_optimizer.step()\n"),
        Invalid("ocean_loss.backward()\n"),
        Invalid("ocean.train()\n", fixed="ocean.eval()\n", unsafe=True),
        Invalid("ocean.requires_grad_(True)\n", fixed="ocean.requires_grad_(False)\n", unsafe=True),
        Invalid(
            "for p in ocean.parameters():\n    p.requires_grad = True\n",
            fixed="for p in ocean.parameters():\n    p.requires_grad = False\n",
            unsafe=True,
        ),
        Invalid(
            "class OceanWatcher:\n"
            "    def update(self, loss):\n"
            "        loss.backward()\n"
            "        self.optimizer.step()\n"
        ),
        Invalid("scaler.step(ocean.optimizer)\n"),
        Invalid("scaler.scale(ocean_loss).backward()\n"),
        Invalid("ocean.optimizer.load_state_dict(checkpoint['ocean_optimizer'])\n"),
        Invalid("ocean.basin = 0.95 * ocean.basin + 0.05 * observers_mean\n"),
    )
    VALID = (
        "ocean.eval()\n",
        "ocean.requires_grad_(False)\n",
        "import torch\nwith torch.no_grad():\n    ocean_out = ocean(batch)\n",
        "torch.save(ocean.optimizer.state_dict(), path)\n",
        "ocean.epoch_update()\n",
        "import torch\noptimizer = torch.optim.AdamW(active.parameters(), lr=3e-4)\n",
        "for p in ocean.parameters():\n    p.requires_grad = False\n",
        "scheduler = torch.optim.lr_scheduler.StepLR(ocean_optimizer, 10)\n",
        "observer.basin = 0.95 * observer.basin + 0.05 * ocean.basin.detach()\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        # Names bound by enclosing `for` loops over the frozen model's parameters.
        self._loops: list[frozenset[str]] = []
        # Per function (module: 0): whether each local holds the frozen model's parameters.
        self._parameter_locals: dict[int, dict[str, bool]] = {}
        # Per function: locals holding a blend of the frozen basin, a value computed from
        # it, or the basin itself: `nudged = slerp(ocean.basin, b, 0.05)` ("blend"),
        # `c = ocean.basin.clone()` ("value"), `b = ocean.basin` ("alias").
        self._basin_locals: dict[int, dict[str, str]] = {}

    # -- what expressions denote ---------------------------------------------

    def _frozen(self, node: cst.BaseExpression) -> bool:
        dotted = dotted_name(node)
        return dotted is not None and matches_any(dotted, self.config.frozen_models)

    def _active(self, node: cst.BaseExpression) -> bool:
        dotted = dotted_name(node)
        return dotted is not None and matches_any(dotted, self.config.active_models)

    def _frozen_optimizer(self, node: cst.BaseExpression) -> bool:
        return self._frozen(node) and _is_optimizer_name(dotted_name(node))

    def _frozen_basin(self, dotted: str) -> bool:
        """Does ``dotted`` name the frozen model's basin: a basin-named attribute or
        local of the frozen model (`ocean.basin`, `ocean_basin`, `self.ocean.target_basin`),
        or a basin-named attribute of `self` in the frozen model's class? A local copy
        (`ocean_basin = ocean.basin.clone()`) is not it."""
        config = self.config
        dotted = dotted.removesuffix(".data")
        held = self._basin_local().get(dotted) if "." not in dotted else None
        if held is not None:  # a local the function assigned decides by its value
            return held == "alias"
        last = dotted.rsplit(".", 1)[-1]
        have = words(last)
        if (
            not matches_any(last, config.basin_names)
            or matches_any(last, config.basin_tables)
            or not NOT_A_VECTOR.isdisjoint(have)
            or matches_any(dotted, config.active_models)
        ):
            return False
        if matches_any(dotted, config.frozen_models):
            return True
        return self._in_frozen_class() and dotted.startswith("self.")

    def _basin_local(self) -> dict[str, str]:
        functions = self.context.scopes.functions
        return self._basin_locals.setdefault(id(functions[-1]) if functions else 0, {})

    def _blended(self, name: str) -> bool:
        return self._basin_local().get(name) == "blend"

    def _report_move(self, node: cst.CSTNode, basin: str) -> None:
        self.report(
            node,
            f"the frozen model's basin `{basin}` is moved toward other values (a moving "
            "average, interpolation or in-place update): the Ocean observes and never "
            "learns; keep its basin fixed",
        )

    def _check_basin_write(
        self, target: cst.BaseExpression, value: cst.BaseExpression, node: cst.CSTNode
    ) -> None:
        """``ocean.basin = 0.95 * ocean.basin + 0.05 * m`` or ``= nudged`` (a blend)."""
        base = target.value if isinstance(target, cst.Subscript) else target
        dotted = dotted_name(base)
        if dotted is None:
            return
        # a blend needs the frozen basin among the values read (cheap test first)
        reads_frozen = any(map(self._frozen_basin, reads(value)))
        moves = reads_frozen and moves_toward(value, self._frozen_basin)
        blended = moves or (isinstance(value, cst.Name) and self._blended(value.value))
        if blended and self._frozen_basin(dotted):
            self._report_move(node, dotted)
        if isinstance(target, cst.Name):
            locals_ = self._basin_local()
            alias = isinstance(value, (cst.Name, cst.Attribute))
            if moves:
                locals_[dotted] = "blend"
            elif alias and self._frozen_basin(dotted_name(value) or ""):
                locals_[dotted] = "alias"
            elif reads_frozen or dotted in locals_:
                locals_[dotted] = "value"  # read or copied from it, not the basin itself

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        """``ocean.basin += 0.05 * (m - ocean.basin)``."""
        dotted = dotted_name(node.target)
        if (
            dotted is not None
            and isinstance(node.operator, (cst.AddAssign, cst.SubtractAssign))
            and self._frozen_basin(dotted)
            and not all(map(self._frozen_basin, reads(node.value)))
        ):
            self._report_move(node, dotted)

    def _in_frozen_class(self) -> bool:
        classes = self.context.scopes.classes
        return bool(classes) and matches_any(classes[-1].name.value, self.config.frozen_models)

    def _frozen_parameters(self, node: cst.BaseExpression) -> bool:
        """Whether ``node`` holds (some of) the frozen model's parameters."""
        if isinstance(node, cst.Name) and node.value in self._locals():
            return self._locals()[node.value]
        if isinstance(node, (cst.Name, cst.Attribute)):
            return self._frozen(node)
        if isinstance(node, cst.Call):
            method = _method(node)
            if method is not None and method[1] in PARAMETER_ITERATORS:
                return self._frozen(method[0])
            callee = dotted_name(node.func)
            if callee is not None and callee.rsplit(".", 1)[-1] in _PASS_THROUGH:
                return any(self._frozen_parameters(arg) for arg in positional_args(node))
            return False
        if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
            return any(
                self._frozen_parameters(element.value)
                for element in node.elements
                if isinstance(element, (cst.Element, cst.StarredElement))
            )
        if isinstance(node, cst.Dict):  # a parameter group: only its "params" count
            return any(
                isinstance(element, cst.DictElement)
                and isinstance(element.key, cst.SimpleString)
                and element.key.evaluated_value == "params"
                and self._frozen_parameters(element.value)
                for element in node.elements
            )
        if isinstance(node, (cst.GeneratorExp, cst.ListComp)):
            return self._frozen_parameters(node.for_in.iter)
        return False

    def _locals(self) -> dict[str, bool]:
        functions = self.context.scopes.functions
        return self._parameter_locals.setdefault(id(functions[-1]) if functions else 0, {})

    def _optimizer_class(self, node: cst.Call) -> str | None:
        qualified = self.context.qualified_name(node.func)
        return None if qualified is None else _optimizer_kind(qualified)

    def _trains_frozen_parameters(self, node: cst.Call, kind: str) -> bool:
        candidates = positional_args(node)[:1] if kind == "torch" else positional_args(node)
        candidates += [
            arg.value
            for arg in node.args
            if arg.keyword is not None and arg.keyword.value in _PARAMS_KEYWORDS
        ]
        return any(self._frozen_parameters(value) for value in candidates)

    def _loop_variable(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and any(node.value in names for names in self._loops)

    # -- visiting --------------------------------------------------------------

    def visit_For(self, node: cst.For) -> None:
        names: frozenset[str] = frozenset()
        if self._frozen_parameters(node.iter):
            target = node.target
            targets = (
                [e.value for e in target.elements] if isinstance(target, cst.Tuple) else [target]
            )
            names = frozenset(t.value for t in targets if isinstance(t, cst.Name))
        self._loops.append(names)

    def leave_For(self, original_node: cst.For) -> None:
        self._loops.pop()

    def visit_Call(self, node: cst.Call) -> None:
        if in_place_move(node, self._frozen_basin, self._blended):
            assert isinstance(node.func, cst.Attribute)
            self._report_move(node, self.context.code_for(node.func.value))
            return
        kind = self._optimizer_class(node)
        if kind is not None:
            self._check_optimizer(node, kind)
            return
        method = _method(node)
        if method is None:
            return
        receiver, name = method
        if name == "step":
            self._check_step(node, receiver)
        elif name == "backward":
            self._check_backward(node, receiver)
        elif name == "load_state_dict":
            if self._frozen_optimizer(receiver) or (
                self._in_frozen_class() and _is_optimizer_name(dotted_name(receiver))
            ):
                self.report(node, "the frozen model has an optimizer whose state is restored")
        elif name == "train":
            self._check_train(node, receiver)
        elif name == "requires_grad_":
            self._check_requires_grad_call(node, receiver)

    def _check_optimizer(self, node: cst.Call, kind: str) -> None:
        if self._trains_frozen_parameters(node, kind):
            self.report(node, "optimizer built over the frozen model's parameters")
        elif self._in_frozen_class() and not any(
            self._mentions_active(value) for value in positional_args(node)
        ):
            self.report(node, "optimizer built inside the frozen model's class")

    def _mentions_active(self, node: cst.BaseExpression) -> bool:
        method = _method(node)
        if method is not None and method[1] in PARAMETER_ITERATORS:
            return self._active(method[0])
        return self._active(node)

    def _check_step(self, node: cst.Call, receiver: cst.BaseExpression) -> None:
        arguments = positional_args(node)
        if self._frozen_optimizer(receiver) or any(
            self._frozen_optimizer(argument) for argument in arguments
        ):
            self.report(node, "optimizer step on the frozen model")
            return
        if not self._in_frozen_class():
            return
        optimizers = [receiver, *arguments]
        if any(_is_optimizer_name(dotted_name(o)) and not self._active(o) for o in optimizers):
            self.report(node, "optimizer step inside the frozen model's class")

    def _check_backward(self, node: cst.Call, receiver: cst.BaseExpression) -> None:
        scaled = _method(receiver)
        if scaled is not None and scaled[1] == "scale" and isinstance(receiver, cst.Call):
            losses = positional_args(receiver)[:1]
        else:
            losses = [receiver]
        if any(self._frozen_loss(loss) for loss in losses):
            self.report(node, "backward pass through a loss of the frozen model")
        elif self._in_frozen_class() and not any(self._active(loss) for loss in losses):
            self.report(node, "backward pass inside the frozen model's class")

    def _frozen_loss(self, node: cst.BaseExpression) -> bool:
        if self._frozen(node):
            return True
        if isinstance(node, cst.BinaryOperation):  # `(ocean_loss / accumulation).backward()`
            return any(
                self._frozen(side) and words(dotted_name(side) or "")[-1:] == ("loss",)
                for side in (node.left, node.right)
            )
        return False

    def _check_train(self, node: cst.Call, receiver: cst.BaseExpression) -> None:
        if not self._frozen(receiver):
            return
        mode = argument(node, 0, "mode")
        if mode is not None and not _is_true(mode):
            return
        assert isinstance(node.func, cst.Attribute)
        self.report(
            node,
            "the frozen model is put in training mode",
            replacement=node.with_changes(
                func=node.func.with_changes(attr=cst.Name("eval")), args=()
            ),
            fix_description="Use `.eval()`",
            safe=False,
        )

    def _check_requires_grad_call(self, node: cst.Call, receiver: cst.BaseExpression) -> None:
        if not (self._frozen(receiver) or self._loop_variable(receiver)):
            return
        flag = argument(node, 0, "requires_grad")
        if flag is not None and not _is_true(flag):
            return
        self.report(
            node,
            "gradients are enabled on the frozen model's parameters",
            replacement=node.with_changes(args=(cst.Arg(cst.Name("False")),)),
            fix_description="Use `requires_grad_(False)`",
            safe=False,
        )

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._check_basin_write(target.target, node.value, node)
        for target in node.targets:  # `groups = [{"params": ocean.parameters()}]`
            if not isinstance(target.target, cst.Name):
                continue
            name = target.target.value
            if self._frozen_parameters(node.value):
                self._locals()[name] = True
            elif isinstance(node.value, _SETTINGS):  # `ocean_lr = 1e-5` holds no parameters
                self._locals()[name] = False
            else:
                self._locals().pop(name, None)
        if not _is_true(node.value):
            return
        for target in node.targets:
            attribute = target.target
            if (
                isinstance(attribute, cst.Attribute)
                and attribute.attr.value == "requires_grad"
                and (self._frozen(attribute.value) or self._loop_variable(attribute.value))
            ):
                self.report(
                    node,
                    "gradients are enabled on the frozen model's parameters",
                    replacement=node.with_changes(value=cst.Name("False")),
                    fix_description="Set `requires_grad = False`",
                    safe=False,
                )
                return


# Calls that pass parameters through: `list(ocean.parameters())`, `chain(a, b)`.
_PASS_THROUGH = frozenset({"list", "tuple", "chain", "filter", "from_iterable"})
_PARAMS_KEYWORDS = frozenset({"params", "parameters", "model", "module"})
# Values that are settings, never parameters.
_SETTINGS = (cst.BaseNumber, cst.BaseString, cst.BinaryOperation, cst.UnaryOperation, cst.Dict)


def _is_true(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


def _method(node: cst.BaseExpression) -> tuple[cst.BaseExpression, str] | None:
    """``(receiver, name)`` for ``receiver.name(...)``."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        return node.func.value, node.func.attr.value
    return None


@lru_cache(maxsize=4096)
def _optimizer_kind(qualified: str) -> str | None:
    """``"torch"`` for a torch.optim-like class, ``"factory"`` for ``*optimizer(...)``."""
    parts = qualified.split(".")
    if any(part in NOT_OPTIMIZER_MODULES for part in parts[:-1]):
        return None
    last = words(parts[-1])
    if last and matches_any(last[-1], ("optimizer", "optimiser")):
        return "factory"
    if len(parts) > 1 and any(part in OPTIMIZER_MODULES for part in parts[:-1]):
        return "torch"
    return None


def _is_optimizer_name(dotted: str | None) -> bool:
    return dotted is not None and any(map(names_an_optimizer, words(dotted)))
