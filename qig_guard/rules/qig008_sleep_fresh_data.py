"""QIG008: new or random data trained on, or made a basin, inside sleep code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import libcst as cst

from qig_guard.engine.resolve import dotted_name, target_names
from qig_guard.engine.traversal import children
from qig_guard.facts.torch_api import (
    DATA_LOADER,
    DATA_WORDS,
    METADATA_ATTRIBUTES,
    disables_gradients,
    imports_random_or_loader_as,
    makes_random_data,
)
from qig_guard.facts.vocabulary import COMPARISON_WORDS
from qig_guard.facts.words import matches_any, words
from qig_guard.rules._sleep import sleep_function
from qig_guard.rules.base import FileContext, Invalid, Rule
from qig_guard.rules.gates import InFile, InNamedDefinition, Named, Text

# What the gate needs (evaluated when the class is created).
# New data by the last word of its name (`new_examples`, `train_data`, `curriculum`), when
# nothing in the function says where the value came from (a parameter, an attribute).
_DATA_NOUNS = (
    DATA_WORDS
    | {"loaders", "data", "examples", "samples", "batches", "corpus"}
    | {"curriculum", "inputs", "texts", "sentences", "documents", "prompts", "stream", "streams"}
)
# ... or a plural after a word that says it is new (`new_experiences`, `incoming_events`).
_NEW_WORDS = frozenset({"new", "fresh", "incoming", "unseen", "novel", "external", "training"})

# Text every flagged call, loop or write holds inside the sleep code: a random API
# (`torch.rand*`, `torch.normal`, `np.random.*`), a loader/dataset name, or a word that
# makes a name new data (its noun, or a word saying it is new).
_FRESH_WORDS = tuple(
    spelling
    for word in (
        *("rand", "normal", "bernoulli", "poisson", "loader", "dataset"),
        *sorted(_DATA_NOUNS | _NEW_WORDS),
    )
    for spelling in (word, word.capitalize(), word.upper())
)


class SleepFreshData(Rule):
    """
    ## What it does
    Inside sleep/consolidation code (a function or method whose name, or an
    enclosing function's or class's name, matches `sleep-functions`, by
    default `sleep*`, `consolidat*`, `dream*`) it flags new data, judged by
    what the code does with it:

    - random data (`torch.rand*`, `torch.randint*`, `torch.normal`,
      `np.random.*`, `random.gauss`) fed to a model (`model(x)`, `self.net(x)`,
      `model.forward(x)`), directly, through locals or loops, or mixed into
      replayed inputs (`torch.where(mask, noise, tokens)`);
    - a random basin handed on as identity: written to a basin attribute
      (`self.target_basin = ...`), given to `set_target_basin(...)` or a basin
      keyword (`Packet(basin=...)`, `learn(basin_coords=...)`), or returned
      (`return target_basin`);
    - new data of any shape fed to the model: a DataLoader or dataset
      (`for batch in loader`, `next(iter(dataset))`, `load_dataset(...)`), or
      a list, generator or curriculum the code was given whose name says it
      is data (`for x in new_examples`, `self.curriculum.batches()`,
      `training_data[i]`), also in comprehensions;
    - the stored basin rebuilt from new data (`self.basin =
      np.mean(new_experiences, 0)`, or a helper merging them), or a mean of
      new data handed on as a basin.

    Each random finding is reported where the random data is made.

    Not flagged: building a random basin that is never handed on (set-up
    code, demos); noise added to a stored basin to explore around it
    (`dreamed = basin + 0.01 * np.random.randn(64)`), measured, logged or
    returned, unless it is fed to the model or written into the stored basin;
    a random index or choice among stored basins or a replay buffer
    (`basins[torch.randint(...)]`, `np.random.choice(basin_bank)`,
    `for x in self.replay_buffer`); coin flips (`torch.rand(1).item() < p`);
    data fed to the model under `torch.no_grad()` / `torch.inference_mode()`
    (any spelling, or `torch.set_grad_enabled(False)`) for measurement only;
    parameters annotated as payloads (`data: bytes`, `dict`, `str`). Tests
    are not sleep code: a `test*` function, a method of a `Test*` class, a
    test module (`test_*.py`, `*_test.py`, `conftest.py`, a `tests/` folder).
    Elastic Weight Consolidation, which estimates Fisher
    information over data, is not sleep code either: nothing in a function
    or class whose name (or an enclosing one's) says `ewc`, `fisher`,
    `importance`, `penalty` or `regulari*` (`class EWC`,
    `consolidation_penalty`), nor a function that accumulates squared
    gradients (`p.grad ** 2`, `p.grad.pow(2)`) into a Fisher estimate.

    ## Why is this bad
    Consolidation uses no new data, only basin alignment: sleep pulls the
    model toward its identity basin ("Sleep consolidates toward basin (not
    random data)"). Fresh or random inputs turn sleep into another round of
    training on unvetted data, and a random or averaged-in basin replaces
    the identity it is meant to protect.

    ## Example
    ```python
    def consolidate_toward_basin(model, target_basin, new_examples, optimizer):
        model.eval()
        for batch in new_examples:
            loss = model(batch).loss + fisher_distance(model.current_basin, target_basin)
            loss.backward()
            optimizer.step()
    ```

    ## Use instead
    ```python
    def consolidate_toward_basin(model, target_basin, optimizer, steps=50):
        model.eval()
        for _ in range(steps):
            loss = fisher_distance(model.basin_matcher.current_basin, target_basin)
            loss.backward()
            optimizer.step()
    ```
    """

    code = "QIG008"
    name = "sleep-fresh-data"
    summary = "sleep/consolidation code trains on new or random data or makes a basin of it"
    gate = (
        Named("sleep_functions")
        & (Text(*_FRESH_WORDS) | InFile(imports_random_or_loader_as))
        & InNamedDefinition("sleep_functions")
    )
    INVALID = (
        Invalid(
            "import torch\n\n"
            "def dream(model, steps):\n"
            "    for _ in range(steps):\n"
            "        model(torch.randn(8, 64))\n"
        ),
        Invalid(
            "class SleepProtocol:\n"
            "    def run(self):\n"
            "        for batch in self.train_loader:\n"
            "            self.model(batch).loss.backward()\n"
        ),
        Invalid(
            "import numpy as np\n\n"
            "def consolidate(model):\n"
            "    target_basin = np.random.randn(64)\n"
            "    return target_basin\n"
        ),
        Invalid("def sleep(model, loader):\n    return model(next(iter(loader)))\n"),
        Invalid(
            "def consolidate(model, new_examples):\n"
            "    for x in new_examples:\n"
            "        model(x).loss.backward()\n"
        ),
    )
    VALID = (
        "import torch\n\n"
        "def consolidate(model, stored_basins):\n"
        "    index = torch.randint(len(stored_basins), ())\n"
        "    target_basin = stored_basins[index]\n"
        "    return model.basin_matcher.set_target_basin(target_basin)\n",
        "import torch\n\n"
        "def sleep(model):\n"
        "    with torch.no_grad():\n"
        "        probe = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))\n"
        "        return model(probe).norm()\n",
        "import torch\n\n"
        "def train_epoch(model, loader):\n"
        "    for batch in loader:\n"
        "        model(batch + torch.randn_like(batch))\n",
        "import numpy as np\n\n"
        "def dream(basin, planner):\n"
        "    dreamed_basin = basin + 0.01 * np.random.randn(64)\n"
        "    return planner.explore(dreamed_basin)\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self._frames: list[_Frame] = []
        self._no_grad: list[int] = []
        self._reported: set[int] = set()

    # --- where we are -------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        sleep = sleep_function(self.context.scopes, self.config, self.context.path) is not None
        outer = self._frames[-1].no_grad if self._frames else 0
        decorated = any(self._is_no_grad(d.decorator) for d in node.decorators)
        frame = _Frame(node.name.value, sleep, outer + decorated)
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            annotation = param.annotation
            kind = _last(annotation.annotation) if annotation is not None else None
            if kind in _NOT_DATA_KINDS:  # `data: bytes` is a payload, not examples
                frame.assigned.add(param.name.value)
        self._frames.append(frame)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._frames.pop()

    def visit_With(self, node: cst.With) -> None:
        entered = sum(self._is_no_grad(item.item) for item in node.items)
        self._no_grad.append(entered)
        if self._frames:
            self._frames[-1].no_grad += entered

    def leave_With(self, original_node: cst.With) -> None:
        entered = self._no_grad.pop()
        if self._frames:
            self._frames[-1].no_grad -= entered

    def _is_no_grad(self, node: cst.BaseExpression) -> bool:
        return disables_gradients(self.context, node)

    def _frame(self) -> _Frame | None:
        frame = self._frames[-1] if self._frames else None
        return frame if frame is not None and frame.sleep else None

    # --- random and new data ------------------------------------------------

    def _is_random_call(self, node: cst.Call) -> bool:
        name = self.context.qualified_name(node.func)
        return name is not None and makes_random_data(name)

    def _random_leaf(self, node: cst.CSTNode, frame: _Frame) -> cst.CSTNode | None:
        """Where ``node``'s random data comes from, when it is a random call or name."""
        if isinstance(node, cst.Name):
            return frame.random_names.get(node.value)
        if isinstance(node, cst.Call) and self._is_random_call(node):
            return node
        return None

    def _data_leaf(self, node: cst.CSTNode, frame: _Frame) -> cst.CSTNode | None:
        """Where ``node``'s new data comes from: a name bound to new data, or new data
        by its own name (`new_examples`, `self.train_data`)."""
        if isinstance(node, cst.Name):
            if node.value in frame.assigned:  # where it came from decides, not its name
                return frame.data_names.get(node.value)
            return node if _new_data(node.value) else None
        if isinstance(node, cst.Attribute) and node.attr.value != "data":  # not `tensor.data`
            root: cst.BaseExpression = node
            while isinstance(root, cst.Attribute):
                root = root.value
            if isinstance(root, cst.Name) and root.value in frame.assigned:
                return None  # `item.inputs` of a local: the local's origin decides
            return node if _new_data(dotted_name(node) or node.attr.value) else None
        if isinstance(node, cst.Call) and not self._is_model(node.func):
            # `self.generate_examples()`, `next_batches(8)`: data from nowhere but the
            # callee; `encode_texts(stored)` transforms what it is given.
            given = any(
                not isinstance(a.value, (cst.BaseNumber, cst.BaseString)) for a in node.args
            )
            callee = dotted_name(node.func)
            return node if not given and callee is not None and _new_data(callee) else None
        return None

    def _parts(
        self, node: cst.CSTNode, leaf: Callable[[cst.CSTNode], cst.CSTNode | None]
    ) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
        """``(part, origin)`` for the parts of ``node``'s value that ``leaf`` finds."""
        if isinstance(node, (cst.SubscriptElement, cst.Comparison, cst.Lambda)):
            return  # an index or a coin flip, not data
        origin = leaf(node)
        if origin is not None:
            yield node, origin
            return
        if isinstance(node, cst.Call):
            func = node.func
            if _measures(func):
                return
            if isinstance(func, cst.Attribute) and func.attr.value in ("item", "tolist"):
                return
            if isinstance(func, cst.Attribute):  # `x.to(device)`: x's data; not a callee
                yield from self._parts(func.value, leaf)
            for arg in node.args:
                yield from self._parts(arg.value, leaf)
            return
        if isinstance(node, cst.Arg):
            yield from self._parts(node.value, leaf)
        elif isinstance(node, cst.Attribute):
            if node.attr.value not in METADATA_ATTRIBUTES:
                yield from self._parts(node.value, leaf)
        elif not isinstance(node, cst.Name):
            for child in children(node):
                yield from self._parts(child, leaf)

    def _random_parts(
        self, node: cst.CSTNode, frame: _Frame
    ) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
        return self._parts(node, lambda n: self._random_leaf(n, frame))

    def _data_parts(
        self, node: cst.CSTNode, frame: _Frame
    ) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
        return self._parts(node, lambda n: self._data_leaf(n, frame))

    def _is_model(self, func: cst.BaseExpression) -> bool:
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            return True
        last = _last(func)
        if last is None or last[:1].isupper():
            return False
        models = (*self.config.frozen_models, *self.config.active_models)
        return last == "self" or bool(_MODEL_WORDS & set(words(last))) or matches_any(last, models)

    def _trains(self, func: cst.BaseExpression) -> bool:
        """A call that trains on its arguments: `kernel.train_from_reward(x)`,
        `learn(x)`, `model.fit(x)`; not sleep code itself (`train_nightly_consolidation`),
        which is judged where it is defined."""
        last = _last(func)
        return (
            last is not None
            and not _TRAIN_WORDS.isdisjoint(words(last))
            and not matches_any(last, self.config.sleep_functions)
        )

    def _is_basin(self, name: str | None) -> bool:
        if name is None:
            return False
        if name.endswith(".data"):
            name = name[: -len(".data")]
        last = name.rsplit(".", 1)[-1]
        return matches_any(last, self.config.basin_names) and not matches_any(
            last, self.config.basin_tables
        )

    def visit_Call(self, node: cst.Call) -> None:
        frame = self._frame()
        if frame is None:
            return
        self._check_iter_call(node, frame)
        model = self._is_model(node.func)
        to_model = (model or self._trains(node.func)) and not frame.no_grad
        setter = _last(node.func) == self.config.basin_setter
        for index, arg in enumerate(node.args):
            keyword = arg.keyword.value if arg.keyword is not None else None
            as_basin = self._is_basin(keyword) or (setter and index == 0 and keyword is None)
            if not (to_model or as_basin):
                continue
            use = "used as a basin"
            if to_model:
                use = "fed to the model" if model else f"trained on by `{_last(node.func)}`"
            # A basin handed on must be made of random data, not stored data explored
            # around, or be a mean of new data; anything random or new feeds no model.
            randoms = to_model or not self._perturbs(arg.value, frame)
            for part, origin in self._random_parts(arg.value, frame) if randoms else ():
                self._report_origin("random data", part, origin, use, frame)
                return  # one finding per call
            data = to_model or self._aggregates(arg.value, frame)
            for part, origin in self._data_parts(arg.value, frame) if data else ():
                self._report_origin("new data", part, origin, use, frame)
                return

    def _perturbs(self, node: cst.CSTNode, frame: _Frame) -> bool:
        """Is ``node``'s random data noise added to stored data (`basin + noise`)?"""
        if isinstance(node, cst.Name):
            return node.value in frame.perturbed
        if isinstance(node, cst.BinaryOperation) and isinstance(
            node.operator, (cst.Add, cst.Subtract)
        ):
            sides = (node.left, node.right)
            noisy = [any(True for _ in self._random_parts(side, frame)) for side in sides]
            if any(noisy) and not all(noisy):
                stored = sides[noisy.index(False)]
                if not isinstance(stored, (cst.BaseNumber, cst.UnaryOperation)):
                    return True
        return any(self._perturbs(child, frame) for child in children(node))

    def _aggregates(self, node: cst.CSTNode, frame: _Frame) -> bool:
        """Does ``node`` take a mean (`np.mean(x)`, `x.mean(0)`, `fisher_mean(xs)`)?"""
        if isinstance(node, cst.Name):
            return node.value in frame.aggregated
        if isinstance(node, cst.Call):
            func = node.func
            last = func.attr.value if isinstance(func, cst.Attribute) else _last(func)
            if last is not None and not _MEAN_WORDS.isdisjoint(words(last)):
                return True
        return any(self._aggregates(child, frame) for child in children(node))

    def _report_origin(
        self,
        what: str,
        part: cst.CSTNode,
        origin: cst.CSTNode,
        use: str,
        frame: _Frame,
        at: cst.CSTNode | None = None,
    ) -> None:
        """One finding per origin of ``what`` (random or new data), at ``at`` (a basin
        write) or else where the data came from, naming the value it flowed through."""
        if id(origin) in self._reported:
            return
        self._reported.add(id(origin))
        via = "" if part is origin else f" (through `{self.context.code_for(part)}`)"
        self.report(
            at or origin,
            f"{what} `{self.context.code_for(origin)}`{via} {use} in sleep code "
            f"`{frame.name}`; consolidation uses no new data, only alignment to the stored "
            "basin",
        )

    def visit_Return(self, node: cst.Return) -> None:
        """``return target_basin`` of a basin made of random data hands it on."""
        frame = self._frame()
        value = node.value
        if frame is None or value is None:
            return
        named = [value] if not isinstance(value, cst.Tuple) else [e.value for e in value.elements]
        for each in named:
            if (
                isinstance(each, cst.Name)
                and self._is_basin(each.value)
                and not self._perturbs(each, frame)
            ):
                for part, origin in self._random_parts(each, frame):
                    self._report_origin("random data", part, origin, "returned as a basin", frame)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._assigned([t.target for t in node.targets], node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._assigned([node.target], node.value)

    def _assigned(self, targets: list[cst.BaseExpression], value: cst.BaseExpression) -> None:
        """A basin attribute written from random or new data is reported; a local is
        only tracked: building a random basin is not sleep training until the value is
        handed on (to the model, a basin keyword or setter, an attribute, a return)."""
        frame = self._frame()
        if frame is None:
            return
        randoms = list(self._random_parts(value, frame))
        data = list(self._data_parts(value, frame))
        stored = any(self._is_basin(dotted_name(t)) for t in targets if not isinstance(t, cst.Name))
        aggregates = bool(data) and self._aggregates(value, frame)
        output = isinstance(value, cst.Call) and self._is_model(value.func)
        if stored:
            for part, origin in randoms:
                self._report_origin("random data", part, origin, "used as a basin", frame)
            for part, origin in data[:1] if not output else ():
                self._report_origin(
                    "new data", part, origin, "made into the stored basin", frame, value
                )
        perturbs = bool(randoms) and self._perturbs(value, frame)
        for target in targets:
            for name in target_names(target) if isinstance(target, cst.Name) else ():
                frame.assigned.add(name)
                for names in (frame.random_names, frame.data_names):
                    names.pop(name, None)
                frame.perturbed.discard(name)
                frame.aggregated.discard(name)
                if randoms and not stored:
                    frame.random_names[name] = randoms[0][1]
                    if perturbs:
                        frame.perturbed.add(name)
                if data and not stored and not output:
                    frame.data_names[name] = data[0][1]
                    if aggregates:
                        frame.aggregated.add(name)

    # --- data iteration -------------------------------------------------------

    def _data_source(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The DataLoader or dataset ``node`` iterates, looking through wrappers."""
        if isinstance(node, cst.Call):
            callee = self.context.qualified_name(node.func) or ""
            if callee.rsplit(".", 1)[-1] in _WRAPPERS:
                for arg in node.args:
                    found = self._data_source(arg.value)
                    if found is not None:
                        return found
                return None
            if callee == DATA_LOADER:
                return node
            node = node.func
        last = _last(node)
        if last is None:
            return None
        have = words(last)  # the last word names the thing: `val_loader`, not `dataset_names`
        data = bool(have) and (have[-1] in DATA_WORDS or have[-1].endswith(("loader", "dataset")))
        stored = not _NOT_DATA_WORDS.isdisjoint(have) or matches_any(
            last, (*self.config.basin_names, *self.config.basin_tables)
        )
        return node if data and not stored else None

    def _report_data(self, source: cst.BaseExpression, frame: _Frame) -> None:
        if id(source) in self._reported:  # `for b in enumerate(iter(loader))`: once
            return
        self._reported.add(id(source))
        self.report(
            source,
            f"sleep code `{frame.name}` iterates `{self.context.code_for(source)}`; "
            "consolidation uses no new data, only alignment to the stored basin",
        )

    def _check_iter_call(self, node: cst.Call, frame: _Frame) -> None:
        if self.context.qualified_name(node.func) == "iter" and node.args:
            source = self._data_source(node.args[0].value)
            if source is not None:
                self._report_data(source, frame)

    def _bind_loop(self, target: cst.BaseExpression, iterable: cst.BaseExpression) -> None:
        """``for probe in noise``, ``for x in new_examples``: the loop variable holds
        random or new data too."""
        frame = self._frame()
        if frame is None:
            return
        randoms = [origin for _, origin in self._random_parts(iterable, frame)]
        source = self._data_source(iterable)
        data = [source] if source is not None else [o for _, o in self._data_parts(iterable, frame)]
        for name in target_names(target):
            frame.assigned.add(name)
            frame.random_names.pop(name, None)
            frame.data_names.pop(name, None)
            frame.perturbed.discard(name)
            frame.aggregated.discard(name)
            if randoms:
                frame.random_names[name] = randoms[0]
            if data:
                frame.data_names[name] = data[0]

    def _check_loop(self, iterable: cst.BaseExpression) -> None:
        frame = self._frame()
        if frame is None:
            return
        source = self._data_source(iterable)
        if source is not None:
            self._report_data(source, frame)

    def visit_For(self, node: cst.For) -> None:
        self._bind_loop(node.target, node.iter)
        self._check_loop(node.iter)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._check_loop(node.iter)

    def _comprehension(self, node: cst.BaseSimpleComp | cst.DictComp) -> None:
        """Bind the loop variables before the element, which libcst visits first."""
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            self._bind_loop(clause.target, clause.iter)
            clause = clause.inner_for_in

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension


_SCALAR = frozenset({"len", "int", "float", "bool", "range", "round"})
_MODEL_WORDS = frozenset({"model", "net", "network", "kernel", "transformer", "encoder"})
_WRAPPERS = frozenset({"enumerate", "iter", "zip", "list", "tqdm", "islice", "cycle", "tqdm.tqdm"})
# Parameter annotations of payloads, not examples (`data: bytes`, `state: dict`).
_NOT_DATA_KINDS = frozenset(
    {"bytes", "bytearray", "str", "int", "float", "bool", "Path", "dict", "Dict", "Mapping"}
)
# Callees that train on their arguments (`train_from_reward`, `learn`, `fit`).
_TRAIN_WORDS = frozenset({"train", "learn", "fit"})
# Callees that take a mean of their arguments.
_MEAN_WORDS = frozenset({"mean", "average", "centroid", "barycenter"})
# Calls whose result measures their arguments (a number), never carries them as data.
_MEASURE_WORDS = COMPARISON_WORDS | {"norm", "divergence", "magnitude"}
_NOT_DATA_WORDS = frozenset(
    {"replay", "replayed", "buffer", "memory", "memories", "stored", "history", "recent", "past"}
    | {"own", "episodic", "cached", "archive", "basin", "basins", "meta", "metadata"}
)


def _new_data(name: str) -> bool:
    """Does the (dotted) name of a parameter, attribute or callee say it holds or
    returns new data? Its last word names the thing; no word may say it is stored."""
    have = words(name)
    if not have or not _NOT_DATA_WORDS.isdisjoint(have):
        return False
    last = words(name.rsplit(".", 1)[-1])
    if not last:
        return False
    if last[-1] in _DATA_NOUNS:
        return True
    return last[-1].endswith("s") and not _NEW_WORDS.isdisjoint(last[:-1])


def _measures(func: cst.BaseExpression) -> bool:
    """``len(x)``, ``float(x)``, ``fisher_distance(a, b)``, ``np.linalg.norm(x)``."""
    dotted = dotted_name(func)
    if dotted is None:
        return False
    last = dotted.rsplit(".", 1)[-1]
    return last in _SCALAR or not _MEASURE_WORDS.isdisjoint(words(last))


def _last(node: cst.BaseExpression) -> str | None:
    dotted = dotted_name(node)
    return dotted.rsplit(".", 1)[-1] if dotted is not None else None


@dataclass
class _Frame:
    """One function being visited: is it sleep code, which names hold random or new
    data (each mapped to where that data came from: a random call, a data source)."""

    name: str
    sleep: bool
    no_grad: int
    random_names: dict[str, cst.CSTNode] = field(default_factory=dict)
    data_names: dict[str, cst.CSTNode] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)
    # Random names that perturb stored data (`basin + noise`): exploration around it.
    perturbed: set[str] = field(default_factory=set)
    # New-data names that went through a mean (`np.mean(new_experiences, 0)`).
    aggregated: set[str] = field(default_factory=set)
