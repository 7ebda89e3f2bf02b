"""QIG010: unpickling checkpoints or basins (``torch.load`` without ``weights_only=True``)."""

from __future__ import annotations

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.engine.traversal import children
from qig_guard.facts.torch_api import PICKLE_LOADERS, PICKLE_MODULES, TORCH_LOAD
from qig_guard.facts.words import matches_any, words
from qig_guard.rules.base import FileContext, Invalid, Rule
from qig_guard.rules.gates import Identifiers


class UnsafeCheckpointLoad(Rule):
    """
    ## What it does
    Flags `torch.load(...)` (under any import alias, and
    `torch.serialization.load`) without an explicit `weights_only=True`, and
    `pickle.load`/`pickle.loads` (also `dill`, `cloudpickle`) of a checkpoint
    or basin: the argument, the file opened in the enclosing `with open(...)
    as f`, or the enclosing function's name mentions a checkpoint (`ckpt`,
    `.pt`, `.pth`) or a basin (`basin-names`). An explicit
    `weights_only=False` is flagged too, without a fix. Calls with
    `**kwargs` or a non-literal `weights_only` are not flagged.

    ## Why is this bad
    Unpickling runs arbitrary code stored in the file, so loading a
    checkpoint or basin someone sent you can execute anything. `torch.load`'s
    safe default can be switched off by the `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`
    environment variable (and older torch defaults to unsafe), so only an
    explicit `weights_only=True` is a guarantee. Basins are JSON, not pickle.

    ## Example
    ```python
    checkpoint = torch.load(checkpoint_path, map_location="cpu")
    ```

    ## Use instead
    ```python
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    ```

    ## Fix safety
    Adding `weights_only=True` is an unsafe fix: a checkpoint that pickles
    arbitrary objects (an optimizer class, a custom config object) stops
    loading. That is the point, but it changes behaviour, so it is applied
    only with `--unsafe-fixes`. No fix is offered when `weights_only=False` or
    a custom `pickle_module` is given explicitly.
    """

    code = "QIG010"
    name = "unsafe-checkpoint-load"
    summary = "checkpoint or basin unpickled: torch.load without weights_only=True, pickle.load"
    gate = Identifiers("load", "loads") & Identifiers("torch", *PICKLE_MODULES)
    INVALID = (
        Invalid(
            'import torch\n\nstate = torch.load(path, map_location="cpu")\n',
            fixed='import torch\n\nstate = torch.load(path, map_location="cpu", weights_only=True)'
            "\n",
            unsafe=True,
        ),
        Invalid(
            "from torch import load as tload\n\nckpt = tload(\n    ckpt_path,\n)\n",
            fixed=(
                "from torch import load as tload\n\n"
                "ckpt = tload(\n    ckpt_path,\n    weights_only=True,\n)\n"
            ),
            unsafe=True,
        ),
        Invalid("import torch\n\nstate = torch.load(path, weights_only=False)\n"),
        Invalid(
            "import pickle\n\n"
            "def load_basin(path):\n"
            '    with open(path, "rb") as f:\n'
            "        return pickle.load(f)\n"
        ),
    )
    VALID = (
        "import torch\n\nstate = torch.load(path, map_location='cpu', weights_only=True)\n",
        "import pickle\n\nwith open('vocab.pkl', 'rb') as f:\n    vocab = pickle.load(f)\n",
        "import json\n\nwith open('basin.json') as f:\n    basin = json.load(f)\n",
        "def load(path):\n    return path\n\nload('model.pt')\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self._opened: list[dict[str, cst.BaseExpression]] = [{}]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._opened.append({})

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._opened.pop()

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None and isinstance(node.asname.name, cst.Name):
            self._opened[-1][node.asname.name.value] = node.item

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.qualified_name(node.func)
        if name in TORCH_LOAD:
            self._torch_load(node)
        elif name in PICKLE_LOADERS and node.args and self._is_checkpoint(node.args[0].value):
            self.report(
                node,
                f"`{name}` of a checkpoint or basin runs any code stored in the file; "
                "save basins as JSON and load tensors with `torch.load(..., weights_only=True)`",
            )

    def _torch_load(self, node: cst.Call) -> None:
        if any(arg.star == "**" for arg in node.args):
            return  # weights_only may be in the mapping
        keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
        chosen = keywords.get(_WEIGHTS_ONLY)
        if chosen is None:
            positional = [a for a in node.args if a.keyword is None]
            if "pickle_module" in keywords or len(positional) > 2:  # load(f, map_location, pickle)
                self.report(
                    node,
                    "`torch.load` with a custom `pickle_module` unpickles arbitrary objects; "
                    "load trusted files only, or drop it and pass `weights_only=True`",
                )
                return
            self.report(
                node,
                "`torch.load` without `weights_only=True` can unpickle arbitrary objects "
                "(its default can be switched off by an environment variable); pass "
                "`weights_only=True`",
                replacement=_with_weights_only(node),
                fix_description="Add `weights_only=True`",
                safe=False,
            )
        elif isinstance(chosen, cst.Name) and chosen.value == "False":
            self.report(
                node,
                "`torch.load(..., weights_only=False)` runs any code pickled in the file; "
                "no fix is offered because `False` was chosen explicitly: load trusted files "
                "only, or re-save the checkpoint as tensors and load with `weights_only=True`",
            )

    def _is_checkpoint(self, argument: cst.BaseExpression) -> bool:
        """Whether the unpickled data is named or opened as a checkpoint or basin."""
        identifiers = [f.name.value for f in self.context.scopes.functions[-1:]]
        identifiers.extend(self._identifiers(argument))
        for identifier in identifiers:
            have = words(identifier)
            if not _CHECKPOINT_WORDS.isdisjoint(have) or matches_any(
                identifier, self.config.basin_names
            ):
                return True
        return False

    def _identifiers(self, node: cst.CSTNode, follow: bool = True) -> list[str]:
        """Names and strings in ``node``, following a handle to the ``open(...)`` it came from."""
        if isinstance(node, cst.Name):
            opened = self._opened[-1].get(node.value) if follow else None
            return [node.value, *(self._identifiers(opened, False) if opened is not None else [])]
        if isinstance(node, cst.Attribute):
            return [dotted_name(node) or node.attr.value, *self._identifiers(node.value, follow)]
        if isinstance(node, cst.SimpleString):
            return [node.raw_value]
        return [found for child in children(node) for found in self._identifiers(child, follow)]


_CHECKPOINT_WORDS = frozenset({"checkpoint", "checkpoints", "ckpt", "ckpts", "pt", "pth"})


_WEIGHTS_ONLY = "weights_only"


def _with_weights_only(call: cst.Call) -> cst.Call:
    """``call`` with ``weights_only=True`` appended, in the layout of its arguments."""
    no_space = cst.SimpleWhitespace("")
    added = cst.Arg(
        value=cst.Name("True"),
        keyword=cst.Name(_WEIGHTS_ONLY),
        equal=cst.AssignEqual(whitespace_before=no_space, whitespace_after=no_space),
    )
    args = list(call.args)
    if not args:
        return call.with_changes(args=[added])
    last, comma = args[-1], args[-1].comma
    if not isinstance(comma, cst.Comma):  # the space before `)` stays last
        last = last.with_changes(whitespace_after_arg=no_space)
        added = added.with_changes(whitespace_after_arg=args[-1].whitespace_after_arg)
        return call.with_changes(args=[*args[:-1], last, added])
    between = call.whitespace_before_args
    if len(args) > 1 and isinstance(args[-2].comma, cst.Comma):
        between = args[-2].comma.whitespace_after
    closing = comma.whitespace_after
    if isinstance(between, cst.ParenthesizedWhitespace) and isinstance(
        closing, cst.ParenthesizedWhitespace
    ):  # one argument per line: the new one goes on its own line, comments stay put
        line = between.with_changes(first_line=closing.first_line, empty_lines=closing.empty_lines)
        last = last.with_changes(comma=comma.with_changes(whitespace_after=line))
        closing = closing.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
        added = added.with_changes(comma=comma.with_changes(whitespace_after=closing))
    else:
        last = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        added = added.with_changes(comma=comma)
    return call.with_changes(args=[*args[:-1], last, added])
