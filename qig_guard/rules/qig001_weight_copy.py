"""QIG001: copying one model's weights into another instead of transferring its basin."""

from __future__ import annotations

import re
from collections.abc import Collection

import libcst as cst

from qig_guard.engine.resolve import dotted_name, target_names
from qig_guard.engine.traversal import children
from qig_guard.facts.torch_api import (
    METADATA_ATTRIBUTES,
    OPTIMIZER_WORDS,
    PARAMETER_ITERATORS,
    VALUE_KEEPING_ATTRIBUTES,
    VALUE_KEEPING_METHODS,
)
from qig_guard.facts.words import matches_any
from qig_guard.rules.base import (
    FileContext,
    Invalid,
    Rule,
    argument,
    positional_args,
)
from qig_guard.rules.gates import Identifiers, Text


class WeightCopy(Rule):
    """
    ## What it does
    Flags code that copies one model's weights into a different model:
    `student.load_state_dict(teacher.state_dict())`, also through a local
    variable, `copy.deepcopy`, `dict(...)` or a dict comprehension over the
    state dict or `named_parameters()`, with or without `strict=False`; a
    weight dict filled key by key from another model's state dict
    (`tgt_sd[k] = src_sd[k]`, `.update(...)`) or blended from two models'
    weights (`tgt_sd[k] * (1 - r) + src_sd[k] * r`, two parents averaged into
    a child) and then loaded; entries copied in place into another model's
    state dict (`tgt_sd[k].copy_(src_sd[k])`: a state dict's tensors are the
    model's parameters); parameter-wise copies in a
    `for p, q in zip(a.parameters(), b.parameters())` loop (`p.data.copy_(q.data)`,
    `p.data = q.data`, `p.copy_(q)`);
    `vector_to_parameters(parameters_to_vector(b.parameters()), a.parameters())`;
    and a model class cloning itself into a new kernel
    (`child = copy.deepcopy(self)` followed by `child.basin = ...`).

    Restoring a model from a checkpoint, a model reloading or reshaping its
    own state (vocabulary growth), dicts that take only the shapes of another
    model's weights (`torch.zeros_like(v)`), optimizer and scheduler state,
    and EMA updates are not flagged; nor are copies into a model named by
    `weight-copy-allowed` (default: `ema`, `swa`, `averaged`, `target_net`,
    `target_network`): an EMA shadow or an RL target network initialised from
    its own online model is the same model's average, not a transfer between
    models.

    ## Why is this bad
    Basin transfer moves a model's identity, a 64-number basin of 2-4 KB,
    not its 100M-10B parameters. A weight copy is 1000x heavier, only works
    between identical architectures, and overwrites the student's own
    geometry instead of letting it converge to the basin.

    ## Example
    ```python
    student_model.load_state_dict(teacher_model.state_dict())
    ```

    ## Use instead
    ```python
    from qig_guard.runtime import extract_basin_from_checkpoint, transfer_basin

    basin_file = extract_basin_from_checkpoint("teacher.pt", "basins/teacher.json")
    transfer_basin(basin_file, student_model)  # trains toward the basin, Fisher loss
    ```
    `load_state_dict` stays fine for a full restore of the same model from
    its own checkpoint.
    """

    code = "QIG001"
    name = "weight-copy"
    summary = "weights copied from one model into another; transfer the basin instead"
    gate = Identifiers("load_state_dict", "copy_", "set_", "deepcopy", "vector_to_parameters") | (
        Identifiers("zip") & Text("=")
    )
    INVALID = (
        Invalid("student_model.load_state_dict(teacher_model.state_dict())\n"),
        Invalid(
            "import copy\n"
            "sd = copy.deepcopy(teacher.state_dict())\n"
            "student.load_state_dict(sd, strict=False)\n"
        ),
        Invalid(
            "for p, q in zip(student.parameters(), teacher.parameters()):\n"
            "    p.data.copy_(q.data)\n"
        ),
        Invalid(
            "from torch.nn.utils import parameters_to_vector, vector_to_parameters\n"
            "vector_to_parameters(parameters_to_vector(b.parameters()), a.parameters())\n"
        ),
        Invalid(
            "def transfer(src, dst, r):\n"
            "    src_sd, dst_sd = src.state_dict(), dst.state_dict()\n"
            "    blended = {k: dst_sd[k] * (1 - r) + src_sd[k] * r for k in dst_sd}\n"
            "    dst.load_state_dict(blended)\n"
        ),
    )
    VALID = (
        'model.load_state_dict(torch.load(path, weights_only=True)["model_state_dict"])\n',
        'model.load_state_dict(checkpoint["state_dict"])\n',
        "best = copy.deepcopy(model.state_dict())\nmodel.load_state_dict(best)\n",
        "for p_ema, p in zip(ema.parameters(), model.parameters()):\n"
        "    p_ema.mul_(d).add_(p, alpha=1 - d)\n",
        "new_optimizer.load_state_dict(optimizer.state_dict())\n",
        "ema_model.load_state_dict(model.state_dict())\n",
        "def grow(model, rows):\n"
        "    sd = model.state_dict()\n"
        '    sd["emb.weight"] = torch.cat([sd["emb.weight"], rows])\n'
        "    model.load_state_dict(sd)\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self._locals: dict[int, dict[str, _Origin]] = {}
        self._weights: dict[int, dict[str, frozenset[str]]] = {}
        # (scope, local name) -> the `copy.deepcopy(self)` it holds
        self._clones: dict[tuple[int, str], cst.BaseExpression] = {}
        self._loops: list[dict[str, str]] = []

    # -- what expressions hold -------------------------------------------------

    def _model(self, node: cst.BaseExpression) -> str | None:
        """A key naming the model ``node`` denotes; ``None`` for non-models."""
        text = dotted_name(node) or self.context.code_for(node).replace(" ", "")
        parts = text.split(".")
        while len(parts) > 1 and parts[-1] in _WRAPPERS:
            parts.pop()
        if matches_any(parts[-1], _NOT_MODELS):
            return None
        return ".".join(parts)

    def _allowed(self, into: str) -> bool:
        """Copies into an EMA shadow or target network (``weight-copy-allowed``) are fine."""
        return matches_any(into, self.config.weight_copy_allowed)

    def _scope_locals(self) -> dict[str, _Origin]:
        return self._locals.setdefault(id(self.context.scopes.scopes[-1].node), {})

    def _is_function(self, node: cst.BaseExpression, name: str) -> bool:
        qualified = self.context.qualified_name(node)
        return qualified is not None and (
            qualified == name or (qualified.startswith("torch.") and qualified.endswith("." + name))
        )

    def _origin(self, node: cst.BaseExpression) -> _Origin | None:
        """Which model's state dict or parameter vector ``node`` holds, if known."""
        if isinstance(node, cst.Name):
            return self._scope_locals().get(node.value)
        if isinstance(node, cst.DictComp):
            return self._comprehension_origin(node)
        if not isinstance(node, cst.Call):
            return None
        if (parameters := self._parameter_source(node)) is not None:
            return ("named" if parameters[1] else "parameters", parameters[0])
        if (receiver := _method(node, ("state_dict",))) is not None:
            model = self._model(receiver)
            return ("state", model) if model is not None else None
        if (receiver := _method(node, VALUE_KEEPING_METHODS)) is not None:
            return self._origin(receiver)
        args = positional_args(node)
        if not args:
            return None
        if (receiver := _method(args[0], ("parameters",))) is not None:
            model = self._model(receiver)
            if model is not None and self._is_function(node.func, "parameters_to_vector"):
                return ("vector", model)
            return None
        # Resolve the function only when its argument is known: most calls are not.
        inner = self._origin(args[0])
        if inner is not None and self.context.qualified_name(node.func) in _COPIES:
            return inner
        return None

    def _comprehension_origin(self, node: cst.DictComp) -> _Origin | None:
        """``{k: v.clone() for k, v in sd.items()}`` or ``{k: sd[k] ...}`` hold ``sd``'s weights."""
        value = _strip_same_values(node.value)
        if isinstance(value, cst.Subscript):
            origin = self._origin(value.value)
            return origin if origin is not None and origin[0] == "state" else None
        loop = node.for_in
        items = _method(loop.iter, ("items",))
        if items is None or not isinstance(value, cst.Name):
            return None
        origin = self._origin(items)
        target = loop.target
        if (
            origin is not None
            and origin[0] == "state"
            and isinstance(target, cst.Tuple)
            and len(target.elements) == 2
            and isinstance(bound := target.elements[1].value, cst.Name)
            and bound.value == value.value
        ):
            return origin
        return None

    # -- local variables -------------------------------------------------------

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """Remember (or forget) what a local name holds after ``target = value``; a
        write ``d[k] = value`` adds the weights ``value`` carries to those of ``d``."""
        if isinstance(target, cst.Name):
            origin = self._origin(value)
            if origin is None:
                self._scope_locals().pop(target.value, None)
            else:
                self._scope_locals()[target.value] = origin
            self._scope_weights()[target.value] = self._weights_in(value)
        elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
            self._add_weights(target.value.value, value)
        elif (
            isinstance(target, (cst.Tuple, cst.List))
            and isinstance(value, (cst.Tuple, cst.List))
            and len(target.elements) == len(value.elements)
        ):
            for element, item in zip(target.elements, value.elements, strict=True):
                if not isinstance(element, cst.StarredElement) and not isinstance(
                    item, cst.StarredElement
                ):
                    self._bind(element.value, item.value)

    def _scope(self) -> int:
        return id(self.context.scopes.scopes[-1].node)

    def _scope_weights(self) -> dict[str, frozenset[str]]:
        return self._weights.setdefault(self._scope(), {})

    def _add_weights(self, name: str, value: cst.BaseExpression) -> None:
        weights = self._scope_weights()
        added = self._weights_in(value)
        if added:
            weights[name] = weights.get(name, frozenset()) | added

    def _weights_in(
        self, node: cst.CSTNode, carriers: dict[str, frozenset[str]] | None = None
    ) -> frozenset[str]:
        """The models whose state-dict entries ``node`` is computed from: state dicts
        and names holding their entries, blended or copied (``tgt * (1 - r) + src[k] * r``),
        not only their shapes (``torch.zeros_like(v)``, ``v.shape``)."""
        carriers = carriers or {}
        found: set[str] = set()
        pending: list[cst.CSTNode] = [node]
        while pending:
            current = pending.pop()
            if isinstance(current, cst.Name):
                found |= carriers.get(current.value, frozenset())
                origin = self._scope_locals().get(current.value)
                if origin is not None and origin[0] == "state":
                    found.add(origin[1])
                found |= self._scope_weights().get(current.value, frozenset())
            elif isinstance(current, cst.Attribute):
                if current.attr.value not in METADATA_ATTRIBUTES:
                    pending.append(current.value)
            elif isinstance(current, cst.Arg):
                pending.append(current.value)
            elif isinstance(current, cst.Subscript):
                pending.append(current.value)  # an entry of it; the key carries no weights
            elif isinstance(current, (cst.Lambda, cst.BaseString)):
                continue
            elif isinstance(current, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
                found |= self._comprehension_weights(current, carriers)
            elif isinstance(current, cst.Call):
                found |= self._call_weights(current, pending)
            else:
                pending.extend(children(current))
        return frozenset(found)

    def _call_weights(self, call: cst.Call, pending: list[cst.CSTNode]) -> frozenset[str]:
        """A state dict's model; nothing for calls that read only shapes; else walk on."""
        func = call.func
        last = func.attr.value if isinstance(func, cst.Attribute) else dotted_name(func) or ""
        if last.endswith("_like") or last in _SHAPE_CALLS:
            return frozenset()
        if (receiver := _method(call, ("state_dict", *PARAMETER_ITERATORS))) is not None:
            model = self._model(receiver)
            return frozenset() if model is None else frozenset({model})
        pending.extend(children(call))
        return frozenset()

    def _comprehension_weights(
        self,
        node: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp,
        carriers: dict[str, frozenset[str]],
    ) -> frozenset[str]:
        """Loop variables carry their iterable's weights into the element."""
        inner = dict(carriers)
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            weights = self._weights_in(clause.iter, inner)
            for target in target_names(clause.target):
                inner[target] = weights
            clause = clause.inner_for_in
        element = node.value if isinstance(node, cst.DictComp) else node.elt
        return self._weights_in(element, inner)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._check_parameter_assignment(node)
        self._check_clone_given_identity(node)
        for target in node.targets:
            self._bind(target.target, node.value)
        bound = node.targets[0].target
        if (
            len(node.targets) == 1
            and isinstance(bound, cst.Name)
            and self._copies_model_self(node.value)
        ):
            self._clones[(self._scope(), bound.value)] = node.value

    # -- a model cloning itself into a new kernel ------------------------------

    def _copies_model_self(self, node: cst.BaseExpression) -> bool:
        """``copy.deepcopy(self)`` in a method of a model class (one that defines
        ``forward`` or reads its own ``parameters()`` or ``state_dict()``)."""
        if not isinstance(node, cst.Call) or len(node.args) != 1:
            return False
        arg = node.args[0].value
        if not (isinstance(arg, cst.Name) and arg.value == "self"):
            return False
        classes = self.context.scopes.classes
        if not classes or self.context.qualified_name(node.func) != "copy.deepcopy":
            return False
        span = self.context.position(classes[-1])  # the file's text: its methods may be unparsed
        lines = self.context.source.split("\n")[span.start.line - 1 : span.end.line]
        return _MODEL_CLASS.search("\n".join(lines)) is not None

    def _check_clone_given_identity(self, node: cst.Assign) -> None:
        """``child = copy.deepcopy(self)`` then ``child.basin = ...``: a new kernel that
        carries all of its parent's weights."""
        for target in node.targets:
            owner: cst.BaseExpression = target.target
            while isinstance(owner, (cst.Attribute, cst.Subscript)):
                owner = owner.value
            if (
                isinstance(owner, cst.Name)
                and owner is not target.target
                and (clone := self._clones.pop((self._scope(), owner.value), None)) is not None
            ):
                self.report(
                    clone,
                    f"`{owner.value}` is a new model cloned with all weights of `self`; "
                    "create it fresh and transfer the basin instead",
                )

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        target: cst.BaseExpression = node.target
        if isinstance(target, cst.Subscript):
            target = target.value
        if isinstance(target, cst.Name):
            self._add_weights(target.value, node.value)

    # -- parameter-wise loops --------------------------------------------------

    def _parameter_source(self, node: cst.BaseExpression) -> tuple[str, bool] | None:
        """``(model, named)`` for ``model.parameters()``, possibly inside list()/tuple()."""
        if isinstance(node, cst.Name):
            origin = self._scope_locals().get(node.value)
            if origin is None or origin[0] not in {"parameters", "named"}:
                return None
            return origin[1], origin[0] == "named"
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Name)
            and node.func.value in {"list", "tuple"}
            and len(args := positional_args(node)) == 1
            and self.context.qualified_name(node.func) in {"list", "tuple"}
        ):
            node = args[0]
        receiver = _method(node, PARAMETER_ITERATORS)
        if receiver is None or not isinstance(node, cst.Call):
            return None
        model = self._model(receiver)
        if model is None:
            return None
        assert isinstance(node.func, cst.Attribute)
        return model, node.func.attr.value == "named_parameters"

    def _zip_frame(
        self, iterator: cst.BaseExpression, target: cst.BaseAssignTargetExpression
    ) -> dict[str, str]:
        """Loop variables bound to different models' parameters by ``zip(a.parameters(), ...)``."""
        frame: dict[str, str] = {}
        if (
            isinstance(iterator, cst.Call)
            and isinstance(iterator.func, cst.Name)
            and iterator.func.value == "zip"
            and isinstance(target, (cst.Tuple, cst.List))
            and self.context.qualified_name(iterator.func) == "zip"
        ):
            sources = [self._parameter_source(arg) for arg in positional_args(iterator)]
            models = {source[0] for source in sources if source is not None}
            if len(models) > 1:
                for source, element in zip(sources, target.elements, strict=False):
                    name = self._loop_variable(element.value, source)
                    if name is not None and source is not None:
                        frame[name] = source[0]
        return frame

    def visit_For(self, node: cst.For) -> None:
        self._loops.append(self._zip_frame(node.iter, node.target))

    def leave_For(self, original_node: cst.For) -> None:
        self._loops.pop()

    def _enter_comprehension(self, node: cst.ListComp | cst.GeneratorExp) -> None:
        self._loops.append(self._zip_frame(node.for_in.iter, node.for_in.target))

    def _leave_comprehension(self, original_node: cst.ListComp | cst.GeneratorExp) -> None:
        self._loops.pop()

    visit_ListComp = visit_GeneratorExp = _enter_comprehension
    leave_ListComp = leave_GeneratorExp = _leave_comprehension

    @staticmethod
    def _loop_variable(target: cst.BaseExpression, source: tuple[str, bool] | None) -> str | None:
        if source is None:
            return None
        if source[1] and isinstance(target, (cst.Tuple, cst.List)) and len(target.elements) == 2:
            target = target.elements[1].value
        return target.value if isinstance(target, cst.Name) else None

    def _parameter_of(self, node: cst.BaseExpression) -> str | None:
        """The model whose parameter ``node`` (a loop variable, maybe ``.data``) is."""
        node = _strip_same_values(node)
        if not isinstance(node, cst.Name):
            return None
        for frame in reversed(self._loops):
            if node.value in frame:
                return frame[node.value]
        return None

    def _check_parameter_copy(
        self, node: cst.CSTNode, destination: cst.BaseExpression, source: cst.BaseExpression
    ) -> None:
        into = self._parameter_of(destination)
        origin = self._parameter_of(source)
        if into is not None and origin is not None and into != origin and not self._allowed(into):
            self.report(
                node,
                f"parameters of `{origin}` copied one by one into `{into}`; "
                "transfer the basin instead of weights",
            )

    def _check_parameter_assignment(self, node: cst.Assign) -> None:
        if not self._loops or len(node.targets) != 1:
            return
        target = node.targets[0].target
        if isinstance(target, cst.Subscript):
            self._check_parameter_copy(node, target.value, node.value)
        elif isinstance(target, cst.Attribute) and target.attr.value == "data":
            self._check_parameter_copy(node, target, node.value)

    # -- calls -----------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        receiver = _method(node, ("load_state_dict",))
        if receiver is not None:
            self._check_load(node, receiver)
        elif (receiver := _method(node, ("update",))) is not None and isinstance(
            receiver, cst.Name
        ):
            for arg in node.args:
                self._add_weights(receiver.value, arg.value)
        elif self._check_entry_copy(node):
            return
        elif self._loops and (destination := _method(node, ("copy_", "set_"))):
            args = positional_args(node)
            if args:
                self._check_parameter_copy(node, destination, args[0])
        else:
            self._check_vector(node)

    def _check_entry_copy(self, node: cst.Call) -> bool:
        """``tgt_sd[k].copy_(src_sd[k])``: a state dict's tensors are the model's own
        parameters, so this writes another model's weights into ``tgt``."""
        destination = _method(node, ("copy_", "set_"))
        if not isinstance(destination, cst.Subscript) or not (args := positional_args(node)):
            return False
        origin = self._origin(destination.value)
        if origin is None or origin[0] != "state" or self._allowed(into := origin[1]):
            return False
        others = sorted(self._weights_in(args[0]) - {into})
        if not others:
            return False
        self.report(
            node,
            f"weights of `{others[0]}` copied entry by entry into the state dict of `{into}`; "
            "transfer the basin instead of weights",
        )
        return True

    def _check_load(self, node: cst.Call, receiver: cst.BaseExpression) -> None:
        state = argument(node, 0, "state_dict")
        origin = self._origin(state) if state is not None else None
        into = self._model(receiver)
        if into is None or self._allowed(into) or state is None:
            return
        if origin is not None and origin[0] == "state" and into != origin[1]:
            self.report(
                node,
                f"weights of `{origin[1]}` copied into `{into}` with load_state_dict; "
                "transfer the basin instead (extract the basin, pass it as target_basin)",
            )
        elif others := sorted(self._weights_in(state) - {into}):
            self.report(
                node,
                f"a weight dict built from the weights of `{'`, `'.join(others)}` loaded into "
                f"`{into}`; transfer the basin instead of copying or blending weights",
            )

    def _check_vector(self, node: cst.Call) -> None:
        """``vector_to_parameters(<other model's vector>, model.parameters())``."""
        vector = argument(node, 0, "vec")
        parameters = argument(node, 1, "parameters")
        if vector is None or parameters is None:
            return
        receiver = _method(parameters, ("parameters",))
        if receiver is None:
            return
        origin = self._origin(vector)
        into = self._model(receiver)
        if (
            origin is not None
            and origin[0] == "vector"
            and into is not None
            and into != origin[1]
            and not self._allowed(into)
            and self._is_function(node.func, "vector_to_parameters")
        ):
            self.report(
                node,
                f"parameters of `{origin[1]}` copied into `{into}` as a flat vector; "
                "transfer the basin instead of weights",
            )


# Objects with a state dict that are not models: copying their state is not a weight copy.
_NOT_MODELS = (*OPTIMIZER_WORDS, "sched*", "scaler")
# Attributes that wrap the same model (DataParallel/DDP, torch.compile).
_WRAPPERS = ("module", "_orig_mod")
# Calls that return a copy of their argument's mapping.
_COPIES = frozenset({"copy.deepcopy", "copy.copy", "dict", "collections.OrderedDict"})
# What reads only a tensor's shape or type, not its values.
_SHAPE_CALLS = frozenset({"len", "size", "numel", "dim", "type", "isinstance", "keys"})

# What a local name holds: ("state", model) for a state dict, ("vector", model) for
# parameters_to_vector(model.parameters()), ("parameters" or "named", model) for
# model.parameters() or model.named_parameters(), possibly in a list.
_Origin = tuple[str, str]


def _method(node: cst.BaseExpression, names: Collection[str]) -> cst.BaseExpression | None:
    """The receiver of ``receiver.name(...)`` when ``name`` is in ``names``."""
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value in names
    ):
        return node.func.value
    return None


_MODEL_CLASS = re.compile(r"\bdef\s+forward\s*\(|\bself\s*\.\s*(?:parameters|state_dict)\s*\(")


def _strip_same_values(node: cst.BaseExpression) -> cst.BaseExpression:
    """``q`` for ``q.data``, ``q.detach().clone()`` and the like."""
    while True:
        if isinstance(node, cst.Attribute) and node.attr.value in VALUE_KEEPING_ATTRIBUTES:
            node = node.value
        elif (receiver := _method(node, VALUE_KEEPING_METHODS)) is not None:
            node = receiver
        else:
            return node
