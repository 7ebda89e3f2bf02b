"""QIG005: a basin written in a binary or pickle format instead of JSON."""

from __future__ import annotations

import re

import libcst as cst

from qig_guard.facts.torch_api import (
    ARRAY_ARCHIVES,
    BINARY_WRITERS,
    CHECKPOINT_WRITERS,
    STRUCT_PACKERS,
)
from qig_guard.facts.words import words
from qig_guard.rules._basin_values import (
    BasinRule,
    Kind,
    call_args,
    dict_entries,
)
from qig_guard.rules.base import FileContext, Invalid, argument
from qig_guard.rules.gates import Identifiers, Named

# What the gate needs (evaluated when the class is created).
_NAMES = frozenset(
    q.rsplit(".", 1)[-1] for q in (*BINARY_WRITERS, *ARRAY_ARCHIVES, *STRUCT_PACKERS)
)


class BasinNotJson(BasinRule):
    """
    ## What it does
    Flags a basin (the identity vector itself) written in a binary or pickle
    format: `torch.save(basin, ...)`, `pickle.dump`, `joblib.dump`, `np.save`,
    `np.savez`/`np.savez_compressed` (positionally or by keyword),
    `struct.pack(fmt, *basin)`, `zlib.compress(basin)`, the raw bytes
    `basin.tobytes()` (unless only hashed: `hashlib.sha256(basin.tobytes())`),
    `basin.tofile(...)`, or a `torch.save`/`pickle.dump` of a dict that holds a
    basin and its metadata but no model state.

    A full training checkpoint (state dicts, optimizer) that carries a basin
    next to the weights, also per member of a constellation, is flagged only
    when its module writes no JSON at all (`json.dump`, `save_basin`): then
    the checkpoint is the basin's only copy.

    A basin is recognised by name (`basin-names`, e.g. `target_basin`,
    `self.basin`, `ckpt["basin"]`), by indexing or iterating a table of basins
    (`basin-tables`), by flow within the function (`vec =
    basin.detach().cpu()`), and by the project index: what the project's
    functions return (a matcher output, an extractor), which attributes it
    assigns from basin loaders, and its one-argument normalisers
    (`fisher_normalize(basin)` is still a basin). Not flagged: such a
    checkpoint beside a JSON export, JSON writers, tables of many basins and
    things about a basin (`basin_path`, `basin_dim`, `basin_vocab`).

    ## Why is this bad
    The spec moves identity as a 2-4 KB human-readable JSON file with its
    provenance. A pickled tensor is opaque, ties the file to the torch/numpy
    versions that wrote it, runs code when loaded, and drops the metadata
    that makes a basin reviewable.

    ## Example
    ```python
    basin = model.basin_matcher.target_basin.detach().cpu()
    torch.save(basin, "gary_a_basin.pt")
    ```

    ## Use instead
    ```python
    from qig_guard.basin import save_basin

    save_basin("gary_a_basin.json", basin, source_model="Gary-A")
    ```

    ## Fix safety
    When the file already imports `save_basin` from `qig_guard.basin`,
    `torch.save(basin, path)` and `np.save(path, basin)` are rewritten to
    `save_basin(path, basin)`. The fix is unsafe: the file's format changes
    (readers of the old `.pt`/`.npy` path break) and `save_basin` may ask for
    provenance the call does not pass.
    """

    code = "QIG005"
    name = "basin-not-json"
    summary = "basin written with pickle/torch.save/np.save or another binary format"
    gate = Named("basin_names", "basin_tables", project=True) & Identifiers(
        *_NAMES, "tofile", "tobytes"
    )
    INVALID = (
        Invalid("import torch\ntorch.save(target_basin, 'basin.pt')\n"),
        Invalid(
            "import torch\ntorch.save({'model_state_dict': model.state_dict(),"
            " 'basin': model.basin_matcher.target_basin}, 'ckpt.pt')\n"
        ),
        Invalid(
            "import pickle\n\n\ndef export(model, f):\n"
            "    vec = model.basin_matcher.current_basin.detach().cpu()\n"
            "    pickle.dump(vec, f)\n"
        ),
        Invalid("import numpy as np\nnp.savez_compressed(out, basin=basin.numpy(), step=step)\n"),
        Invalid("import torch\ntorch.save({'basin': basin, 'source_model': 'Gary-A'}, path)\n"),
        Invalid("import struct\npayload = struct.pack('64f', *ocean_basin.tolist())\n"),
        Invalid(
            "import torch\nfrom qig_guard.basin import save_basin\ntorch.save(basin, 'basin.pt')\n",
            fixed="import torch\nfrom qig_guard.basin import save_basin\n"
            "save_basin('basin.pt', basin)\n",
            unsafe=True,
        ),
    )
    VALID = (
        "import torch\ntorch.save({'model_state_dict': model.state_dict(),"
        " 'optimizer': opt.state_dict(), 'basin': basin}, path)\n"
        "save_basin('basin.json', basin, source_model='Gary-A')\n",
        "import json\njson.dump({'basin': basin.tolist()}, f)\n",
        "import torch\ntorch.save(observer_basins, 'bank.pt')\n",
        "import numpy as np\nnp.save('vocab.npy', basin_vocab)\n",
        "import torch\ntorch.save(model.state_dict(), 'weights.pt')\n",
    )

    def __init__(self, context: FileContext) -> None:
        super().__init__(context)
        self._not_serialised: set[int] = set()  # `.tobytes()` calls only hashed or reported
        # `raw = basin.tobytes()`, reported when the scope ends unless `raw` was hashed
        self._raw_names: dict[tuple[int, str], cst.Call] = {}
        self._hashed_names: set[tuple[int, str]] = set()

    def _scope_id(self) -> int:
        functions = self.context.scopes.functions
        return id(functions[-1]) if functions else 0

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        if (
            len(node.targets) == 1
            and isinstance(node.targets[0].target, cst.Name)
            and isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and value.func.attr.value == "tobytes"
            and self.values.is_basin(value.func.value)
        ):
            self._not_serialised.add(id(value))
            self._raw_names[self._scope_id(), node.targets[0].target.value] = value

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._report_raw_bytes(id(original_node))

    def leave_Module(self, original_node: cst.Module) -> None:
        self._report_raw_bytes(0)

    def _report_raw_bytes(self, scope: int) -> None:
        for key in [key for key in self._raw_names if key[0] == scope]:
            call = self._raw_names.pop(key)
            if key not in self._hashed_names:
                self._flag(call, "`.tobytes()`")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "tofile":
            if self.values.is_basin(func.value):
                self._flag(node, "`.tofile()`")
            return
        if _hashes(self.context, node):  # a fingerprint of the basin, not a copy of it
            self._not_serialised.update(id(arg.value) for arg in node.args)
            scope = self._scope_id()
            self._hashed_names.update(
                (scope, arg.value.value) for arg in node.args if isinstance(arg.value, cst.Name)
            )
            return
        if isinstance(func, cst.Attribute) and func.attr.value == "tobytes":
            if id(node) not in self._not_serialised and self.values.is_basin(func.value):
                self._flag(node, "`.tobytes()`")
            return
        if isinstance(func, cst.Attribute) and func.attr.value in {"write", "write_bytes"}:
            data = argument(node, 0, "data")
            if self._is_basin_bytes(data):
                assert data is not None
                self._not_serialised.add(id(data))
                self._flag(node, f"`.{func.attr.value}()` of its raw bytes")
            return
        qualified = self.values.call_name(func, _NAMES)
        if qualified is None:
            return
        writer = f"`{qualified}`"
        if qualified in BINARY_WRITERS:
            index, keywords = BINARY_WRITERS[qualified]
            payload = argument(node, index, *keywords)
            if payload is None:
                return
            if self.values.is_basin(payload):
                self._flag(node, writer, self._fix(node, qualified, payload))
            elif self._is_basin_record(payload):
                self._flag(node, f"{writer} of a basin record with no model state")
            elif (
                qualified in CHECKPOINT_WRITERS
                and (held := self._only_in_checkpoint(payload)) is not None
            ):
                # an inline checkpoint is reported at its basin, a named one at the call
                self.report(
                    held if isinstance(payload, cst.Dict) else node,
                    f"basin kept only inside a {writer} checkpoint: this module writes no "
                    "JSON, so the basin has no human-readable file; also export it with "
                    "`save_basin(path, basin, ...)`",
                )
        elif qualified in ARRAY_ARCHIVES:
            positional, keywords_ = call_args(node)
            starred = [a.value for a in node.args if a.star == "*"]
            named = [
                v
                for k, v in keywords_.items()
                if k != "file"
                and (
                    self.values.is_basin(v)
                    or (
                        self.values.kind_of_name(k) is Kind.BASIN
                        and self.values.kind(v) is not Kind.TABLE
                    )
                )
            ]
            if named or any(self.values.is_basin(v) for v in (*positional[1:], *starred)):
                self._flag(node, writer)
        elif qualified in STRUCT_PACKERS and any(
            a.star == "*" and self.values.is_basin(a.value) for a in node.args
        ):
            self._flag(node, writer)

    def _is_basin_bytes(self, data: cst.BaseExpression | None) -> bool:
        return (
            isinstance(data, cst.Call)
            and isinstance(data.func, cst.Attribute)
            and data.func.attr.value == "tobytes"
            and self.values.is_basin(data.func.value)
        )

    def _only_in_checkpoint(self, payload: cst.BaseExpression) -> cst.BaseExpression | None:
        """The basin a checkpoint dict (or one it nests, also per member in a list
        comprehension) holds, in a module that never writes JSON."""
        if _WRITES_JSON.search(self.context.source):
            return None
        found = self.values.dict_of(payload)
        if found is None:
            return None
        pending = [found[0]]
        while pending:
            entries = pending.pop()
            for key, value in entries:
                if (
                    value is not None
                    and not _literal(value)
                    and self.values.holds_basin([(key, value)])
                ):
                    return value
            for _, value in entries:
                if isinstance(value, cst.ListComp):
                    value = value.elt
                elif isinstance(value, (cst.List, cst.Tuple)):
                    pending.extend(
                        nested
                        for element in value.elements
                        if (nested := dict_entries(element.value)) is not None
                    )
                    continue
                nested = dict_entries(value) if value is not None else None
                if nested is not None:
                    pending.append(nested)
        return None

    def _is_basin_record(self, payload: cst.BaseExpression) -> bool:
        """A dict holding a basin and metadata only (no ``**`` spread, no model state)."""
        found = self.values.dict_of(payload)
        if found is None or found[1]:
            return False
        entries = found[0]
        if any(value is None for _, value in entries):
            return False
        for key, value in entries:
            if isinstance(value, cst.Call) and _calls_state_dict(value):
                return False
            key_words = set(words(key or ""))
            if (
                key_words & _STATE_WORDS
                and not key_words & _METADATA_WORDS
                and not isinstance(value, (cst.BaseString, cst.BaseNumber))
            ):
                return False
        return self.values.holds_basin(entries)

    def _fix(self, node: cst.Call, qualified: str, payload: cst.BaseExpression) -> cst.Call | None:
        """``save_basin(path, basin)`` when ``save_basin`` is imported and the call is plain."""
        if qualified not in _FIXABLE or self.context.scopes.lookup("save_basin") not in _SAVE_BASIN:
            return None
        positional, keywords = call_args(node)
        if len(positional) != 2 or keywords or len(node.args) != 2:
            return None
        path = positional[1] if qualified == "torch.save" else positional[0]
        return cst.Call(func=cst.Name("save_basin"), args=[cst.Arg(path), cst.Arg(payload)])

    def _flag(self, node: cst.Call, writer: str, replacement: cst.Call | None = None) -> None:
        self.report(
            node,
            f"basin written with {writer} (binary/pickle); save it as JSON with provenance "
            "via `save_basin(path, basin, ...)`",
            replacement=replacement,
            fix_description="Write the basin with `save_basin(path, basin)` (JSON)",
            safe=False,
        )


# Any JSON writer in the module: the basin may be exported as JSON there.
_WRITES_JSON = re.compile(r"\bjson\.dumps?\s*\(|\bsave_basin\s*\(|\bto_json\s*\(|\bdumps?\s*\(")
_FIXABLE = frozenset({"torch.save", "numpy.save"})
_SAVE_BASIN = frozenset({"qig_guard.basin.save_basin", "qig_guard.runtime.save_basin"})
# Keys whose non-literal value is model or training state: the dict is a checkpoint.
_STATE_WORDS = frozenset(
    {"state", "optimizer", "optim", "scheduler", "model", "weights", "params", "parameters"}
)
_METADATA_WORDS = frozenset({"source", "name", "id", "path", "tag", "version", "type"})


_HASHERS = frozenset({"hash", "builtins.hash"})


def _hashes(context: FileContext, call: cst.Call) -> bool:
    """``hashlib.sha256(...)``, ``hash(...)`` or ``digest.update(...)``: hashing."""
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value == "update":
        return True
    qualified = context.qualified_name(func) or ""
    return qualified.startswith("hashlib.") or qualified in _HASHERS


def _literal(value: cst.BaseExpression | None) -> bool:
    """``None``, a number or a string: nothing that holds a vector."""
    return (
        value is None
        or isinstance(value, (cst.BaseString, cst.BaseNumber))
        or (isinstance(value, cst.Name) and value.value in {"None", "True", "False"})
    )


def _calls_state_dict(call: cst.Call) -> bool:
    func = call.func
    return isinstance(func, cst.Attribute) and func.attr.value == "state_dict"
