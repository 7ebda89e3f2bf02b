"""QIG007: training mode, or gradient steps without ``eval()``, inside sleep code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.facts.torch_api import names_an_optimizer
from qig_guard.facts.words import words
from qig_guard.rules._sleep import sleep_function
from qig_guard.rules.base import FileContext, Invalid, Rule
from qig_guard.rules.gates import Identifiers, InNamedDefinition, Named


class SleepTrainMode(Rule):
    """
    ## What it does
    Inside sleep/consolidation code (a function or method whose name, or an
    enclosing function's or class's name, matches `sleep-functions`, by
    default `sleep*`, `consolidat*`, `dream*`) it flags:

    - a call that puts a model in training mode (`model.train()`,
      `model.train(True)`, `model.training = True`) when training follows
      it: a gradient step (`loss.backward()`, `optimizer.step()`) or a
      forward call of that model (`model(x)`, `model.forward(x)`), later in
      the function or anywhere in the same loop, or a later call of a
      function of the same file that takes gradient steps, directly or
      through its own callees (`self._replay_step(batch)`);
    - the first gradient step of a function with no `eval()` before it, unless
      the function is called by code that calls `eval()` or is a method of a
      class that does.

    A `train()` that only restores the caller's mode after consolidating (in
    a `finally:`, with no training after it, or after the function's own
    `eval()` phase before handing on to a training helper) is not flagged,
    nor is `model.train(was_training)`. Tests are not sleep code: a `test*`
    function, a method of a `Test*` class, a test module (`test_*.py`,
    `*_test.py`, `conftest.py`, a `tests/` folder). Elastic Weight Consolidation is not sleep
    code: nothing in a function or class whose name (or an enclosing one's)
    says `ewc`, `fisher`, `importance`, `penalty` or `regulari*`, nor a
    function that accumulates squared gradients (`p.grad ** 2`,
    `p.grad.pow(2)`) into a Fisher estimate.

    ## Why is this bad
    Sleep consolidates the model toward its identity basin; in training mode
    dropout and batch-norm statistics perturb exactly the basin being
    measured and aligned. The basin-transfer practice runs consolidation in
    eval mode ("no dropout during sleep").

    ## Example
    ```python
    def consolidate_toward_basin(model, target_basin, optimizer, steps=50):
        model.train()
        for _ in range(steps):
            loss = fisher_distance(model.basin_matcher.current_basin, target_basin)
            loss.backward()
            optimizer.step()
    ```

    ## Use instead
    ```python
    def consolidate_toward_basin(model, target_basin, optimizer, steps=50):
        was_training = model.training
        model.eval()  # no dropout during sleep
        try:
            for _ in range(steps):
                loss = fisher_distance(model.basin_matcher.current_basin, target_basin)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        finally:
            model.train(was_training)
    ```
    """

    code = "QIG007"
    name = "sleep-train-mode"
    summary = "sleep/consolidation code trains the model in training mode (no eval())"
    # Whether a step follows an `eval()` depends on the function's callers and its class.
    reads = "file"
    gate = (
        Named("sleep_functions")
        & Identifiers("train", "training", "backward", "step")
        & InNamedDefinition("sleep_functions")
    )
    INVALID = (
        Invalid(
            "def consolidate(model, target_basin, optimizer):\n"
            "    model.train()\n"
            "    loss = fisher_distance(model.basin_matcher.current_basin, target_basin)\n"
            "    loss.backward()\n"
            "    optimizer.step()\n"
        ),
        Invalid(
            "class SleepProtocol:\n"
            "    def run(self, steps):\n"
            "        for _ in range(steps):\n"
            "            self.model.train(True)\n"
            "            self.basin_loss().backward()\n"
            "            self.optimizer.step()\n"
        ),
        Invalid(
            "def dream_phase(model, target_basin, opt, steps=50):\n"
            "    for _ in range(steps):\n"
            "        loss = fisher_distance(model.basin_matcher.current_basin, target_basin)\n"
            "        loss.backward()\n"
            "        opt.step()\n"
        ),
    )
    VALID = (
        "def consolidate(model, target_basin, optimizer, steps=50):\n"
        "    model.eval()\n"
        "    for _ in range(steps):\n"
        "        fisher_distance(model.basin_matcher.current_basin, target_basin).backward()\n"
        "        optimizer.step()\n"
        "    model.train()\n"
        "    return steps\n",
        "def sleep_cycle(model, optimizer):\n"
        "    model.eval()\n"
        "    try:\n"
        "        basin_loss(model).backward()\n"
        "        optimizer.step()\n"
        "    finally:\n"
        "        model.train()\n",
        "def train_epoch(model, loader, optimizer):\n"
        "    model.train()\n"
        "    for batch in loader:\n"
        "        model(batch).loss.backward()\n"
        "        optimizer.step()\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self._frames: list[_Frame] = []
        self._all: list[_Frame] = []
        self._steps: list[tuple[cst.Call, _Frame]] = []
        # train() calls no training followed inside their function: (call, its frame).
        self._unconfirmed: list[tuple[_Pending, _Frame]] = []

    def visit_Module(self, node: cst.Module) -> None:
        self._push("<module>", sleep=False)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        sleep = sleep_function(self.context.scopes, self.config, self.context.path) is not None
        self._push(node.name.value, sleep)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        frame = self._frames.pop()
        self._unconfirmed += [(pending, frame) for pending in frame.pending]

    def _push(self, name: str, sleep: bool) -> None:
        classes = self.context.scopes.classes
        frame = _Frame(name, sleep, classes[-1] if classes else None)
        self._frames.append(frame)
        self._all.append(frame)

    def visit_Finally(self, node: cst.Finally) -> None:
        self._frames[-1].finally_depth += 1

    def leave_Finally(self, original_node: cst.Finally) -> None:
        self._frames[-1].finally_depth -= 1

    def visit_For(self, node: cst.For) -> None:
        self._frames[-1].loops.append(_Loop(node))

    def leave_For(self, original_node: cst.For) -> None:
        self._leave_loop()

    def visit_While(self, node: cst.While) -> None:
        self._frames[-1].loops.append(_Loop(node))

    def leave_While(self, original_node: cst.While) -> None:
        self._leave_loop()

    def _leave_loop(self) -> None:
        frame = self._frames[-1]
        loop = frame.loops.pop()
        self._confirm(
            frame,
            lambda p: (
                any(n is loop.node for n in p.loops) and (loop.stepped or p.receiver in loop.used)
            ),
        )

    def visit_Call(self, node: cst.Call) -> None:
        frame = self._frames[-1]
        callee = dotted_name(node.func)
        if callee is not None:
            frame.calls.add(callee.rsplit(".", 1)[-1])
            for pending in frame.pending:
                pending.after.add(callee.rsplit(".", 1)[-1])
        mode = _mode(node)
        if mode is not None:
            self._switch(frame, node, mode)
        elif self._is_gradient_step(node):
            self._stepped(frame, node)
        else:
            used = {callee, callee.removesuffix(".forward")} if callee is not None else set()
            for each in self._frames:
                for loop in each.loops:
                    loop.used |= used
                self._confirm(each, lambda p: p.receiver in used)

    def visit_Assign(self, node: cst.Assign) -> None:
        """``model.training = True`` switches the mode as ``model.train()`` does."""
        value = node.value
        for target in node.targets:
            attribute = target.target
            if (
                isinstance(attribute, cst.Attribute)
                and attribute.attr.value == "training"
                and isinstance(value, cst.Name)
                and value.value in ("True", "False")
            ):
                mode = "train" if value.value == "True" else "eval"
                self._switch(self._frames[-1], node, mode, dotted_name(attribute.value))

    def _switch(
        self, frame: _Frame, node: cst.Call | cst.Assign, mode: str, receiver: str | None = None
    ) -> None:
        frame.mode = mode
        frame.has_eval |= mode == "eval"
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            receiver = dotted_name(node.func.value)
        if mode == "eval":  # train() then eval() on the same model: no harm done
            frame.pending = [p for p in frame.pending if p.receiver != receiver]
        elif mode == "train" and frame.sleep and not frame.finally_depth:
            loops = tuple(loop.node for loop in frame.loops)
            frame.pending.append(_Pending(node, receiver, loops, restores=frame.has_eval))

    def _is_gradient_step(self, node: cst.Call) -> bool:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "backward":
            return True
        if self.context.qualified_name(func) == "torch.autograd.backward":
            return True
        if isinstance(func, cst.Attribute) and func.attr.value == "step":
            return _optimizer_like(func.value) or any(_optimizer_like(a.value) for a in node.args)
        return False

    def _stepped(self, frame: _Frame, node: cst.Call) -> None:
        frame.steps = True
        for each in self._frames:
            for loop in each.loops:
                loop.stepped = True
            self._confirm(each, lambda p: True)
        if not frame.sleep or any(each.mode is not None for each in self._frames):
            return
        unit = next(each for each in self._frames if each.sleep)  # closures count as their host
        if all(seen is not unit for _, seen in self._steps):
            self._steps.append((node, unit))

    def _report_helper_training(self) -> None:
        """A ``train()`` followed by a call of a function of this file that takes
        gradient steps (directly or through its own callees) is followed by training."""
        stepping = {frame.name for frame in self._all if frame.steps}
        grown = True
        while grown:
            more = {f.name for f in self._all if f.calls & stepping and f.name not in stepping}
            stepping |= more
            grown = bool(more)
        for pending, frame in self._unconfirmed:
            frame.pending = [pending]
            self._confirm(frame, lambda p: not p.restores and bool(p.after & stepping))

    def _confirm(self, frame: _Frame, followed: Callable[[_Pending], bool]) -> None:
        """Report the frame's pending ``train()`` calls that training follows."""
        keep = []
        for pending in frame.pending:
            if followed(pending):
                frame.trains = True
                self.report(
                    pending.call,
                    f"`{self.context.code_for(pending.call)}` puts the model in training mode "
                    f"in sleep code `{frame.name}` and training follows; consolidate in eval "
                    "mode (`.eval()`) and restore the caller's mode afterwards, e.g. in "
                    "`finally:`",
                )
            else:
                keep.append(pending)
        frame.pending = keep

    def leave_Module(self, original_node: cst.Module) -> None:
        self._report_helper_training()
        guarded = {id(f.cls) for f in self._all if f.has_eval and f.cls is not None}
        reached: set[str] = set()
        # Functions called, directly or not, by code that calls eval() or whose train()
        # was reported already.
        todo = [f for f in self._all if f.has_eval or f.trains]
        defined: dict[str, list[_Frame]] = {}
        for frame in self._all:
            defined.setdefault(frame.name, []).append(frame)
        while todo:
            for callee in todo.pop().calls - reached:
                reached.add(callee)
                todo.extend(defined.get(callee, ()))
        for node, frame in self._steps:
            if frame.trains or frame.name in reached or id(frame.cls) in guarded:
                continue  # reported at a train(), or eval() is set by its caller or class
            self.report(
                node,
                f"gradient step in sleep code `{frame.name}` with no `.eval()` before it; "
                "put the model in eval mode before consolidating (no dropout during sleep)",
            )


def _mode(call: cst.Call) -> str | None:
    """``"eval"``/``"train"`` for a literal mode switch, ``"other"`` for ``train(x)``."""
    func = call.func
    if not isinstance(func, cst.Attribute):
        return None
    if func.attr.value == "eval":
        return "eval" if not call.args else None
    if func.attr.value != "train":
        return None
    if not call.args:
        return "train"
    (arg, *rest) = call.args
    keyword = arg.keyword.value if arg.keyword is not None else "mode"
    value = arg.value
    literal = isinstance(value, cst.Name) and value.value in ("True", "False")
    if literal and not rest and not arg.star and keyword == "mode":
        return "train" if cst.ensure_type(value, cst.Name).value == "True" else "eval"
    return "other"


def _optimizer_like(node: cst.BaseExpression) -> bool:
    dotted = dotted_name(node)
    return dotted is not None and any(map(names_an_optimizer, words(dotted.split(".")[-1])))


@dataclass
class _Pending:
    """A ``train()`` call (or ``x.training = True``) not yet known to be followed by
    training; ``after`` holds the callees called after it in its function."""

    call: cst.CSTNode
    receiver: str | None
    loops: tuple[cst.CSTNode, ...]
    restores: bool = False  # after an eval() in its function: it may restore the mode
    after: set[str] = field(default_factory=set)


@dataclass
class _Loop:
    """An open loop: did it take a gradient step, which callees did it call."""

    node: cst.CSTNode
    stepped: bool = False
    used: set[str] = field(default_factory=set)


@dataclass
class _Frame:
    """One function (or the module) being visited."""

    name: str
    sleep: bool
    cls: cst.ClassDef | None
    mode: str | None = None
    finally_depth: int = 0
    has_eval: bool = False
    trains: bool = False
    steps: bool = False
    loops: list[_Loop] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    calls: set[str] = field(default_factory=set)
