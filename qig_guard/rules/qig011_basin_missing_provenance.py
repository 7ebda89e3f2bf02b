"""QIG011: a basin written to JSON without its provenance, or with ``allow_nan`` on."""

from __future__ import annotations

import libcst as cst

from qig_guard.facts.vocabulary import provenance_keys
from qig_guard.rules._basin_values import (
    BasinRule,
)
from qig_guard.rules.base import Invalid, argument
from qig_guard.rules.gates import Identifiers, Named

# What the gate needs (evaluated when the class is created).
_DUMPS = frozenset({"dump", "dumps"})
_WRITES = frozenset({"write", "write_text", "write_bytes"})


class BasinMissingProvenance(BasinRule):
    """
    ## What it does
    Flags a basin written to JSON (`json.dump(...)`, or `f.write(json.dumps(...))`)
    from a dict literal, `dict(...)` call or a local name bound once to one,
    that lacks the provenance keys the basin file format requires
    (`source_model` and `timestamp`), a bare basin vector written to JSON with
    no record around it, and such a write that leaves `allow_nan` on.

    The dict counts as a basin record when its `"basin"` key (any key matching
    `basin-names`) or one of its values is a basin. Not flagged: dicts spread
    from elsewhere (`{**meta, "basin": ...}`) or filled in after the literal
    (`record["timestamp"] = ...`, `record.update(...)`) for the missing keys,
    `json.dumps` whose result is not written (`len(json.dumps(record))`), and
    JSON that holds no basin.

    ## Why is this bad
    A basin without its source model and timestamp cannot be traced back to
    the checkpoint it came from, and the basin validator rejects the file. With
    `allow_nan` on (the `json` default), a diverged basin is written as `NaN`,
    which is not JSON: other readers fail on it, or worse, load it.

    ## Example
    ```python
    json.dump({"basin": basin.tolist(), "dim": 64}, f)
    ```

    ## Use instead
    ```python
    from qig_guard.basin import save_basin

    save_basin(path, basin, source_model="Gary-A")
    ```
    or add `"source_model"` and `"timestamp"` and pass `allow_nan=False`.

    ## Fix safety
    Adding `allow_nan=False` (or turning `allow_nan=True` to `False`) is
    unsafe: writing a basin with `NaN` or infinite values then raises
    `ValueError` instead of writing a file. The missing keys have no fix: only
    the author knows the source model.
    """

    code = "QIG011"
    name = "basin-missing-provenance"
    summary = "basin JSON written without source_model/timestamp, or with allow_nan on"
    gate = Named("basin_names", "basin_tables", project=True) & Identifiers(*_DUMPS, *_WRITES)
    INVALID = (
        Invalid(
            "import json\njson.dump({'basin': basin.tolist(), 'dim': 64}, f, allow_nan=False)\n"
        ),
        Invalid(
            "import json\njson.dump({'basin': basin.tolist(), 'source_model': 'Gary-A',"
            " 'timestamp': now}, f)\n",
            fixed="import json\njson.dump({'basin': basin.tolist(), 'source_model': 'Gary-A',"
            " 'timestamp': now}, f, allow_nan=False)\n",
            unsafe=True,
        ),
        Invalid(
            "import json\n\n\ndef export(basin, path):\n"
            "    with open(path, 'w') as f:\n"
            "        f.write(json.dumps({'basin': basin.tolist()}, allow_nan=False))\n"
        ),
    )
    VALID = (
        "import json\njson.dump({'basin': basin.tolist(), 'source_model': 'Gary-A',"
        " 'timestamp': now}, f, allow_nan=False)\n",
        "import json\njson.dump({'loss': 0.3, 'step': 10}, f)\n",
        "import json\nprint(len(json.dumps({'basin': basin.tolist()})))\n",
        "import json\njson.dump({**provenance, 'basin': basin.tolist()}, f, allow_nan=False)\n",
    )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.values.call_name(node.func, _DUMPS)
        if qualified == "json.dump":
            self._check(node)
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value in _WRITES:
            written = argument(node, 0, "data", "s")
            if (
                isinstance(written, cst.Call)
                and isinstance(written.func, cst.Attribute)
                and written.func.attr.value == "encode"
            ):
                written = written.func.value
            if (
                isinstance(written, cst.Call)
                and self.values.call_name(written.func, _DUMPS) == "json.dumps"
            ):
                self._check(written)

    def _check(self, call: cst.Call) -> None:
        payload = argument(call, 0, "obj")
        if payload is None:
            return
        if self.values.is_basin(payload):
            self.report(
                call,
                "basin written to JSON as a bare vector, without "
                f"{' and '.join(f'`{key}`' for key in provenance_keys())}; "
                "use `save_basin(path, basin, ...)`",
            )
        else:
            found = self.values.dict_of(payload)
            if found is None or not self.values.holds_basin(found[0]):
                return
            entries, mutated = found
            keys = {key for key, _ in entries}
            missing = [key for key in provenance_keys() if key not in keys]
            if missing and not mutated and None not in keys:
                listed = ", ".join(f"`{key}`" for key in missing)
                self.report(
                    call,
                    f"basin written to JSON without the provenance key(s) {listed}; "
                    "use `save_basin(path, basin, ...)`",
                )
        self._check_allow_nan(call)

    def _check_allow_nan(self, call: cst.Call) -> None:
        if any(arg.star == "**" for arg in call.args):
            return
        for index, arg in enumerate(call.args):
            if arg.keyword is not None and arg.keyword.value == "allow_nan":
                if isinstance(arg.value, cst.Name) and arg.value.value == "False":
                    return
                args = list(call.args)
                args[index] = arg.with_changes(value=cst.Name("False"))
                break
        else:
            tight = cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            )
            keyword = cst.Arg(keyword=cst.Name("allow_nan"), value=cst.Name("False"), equal=tight)
            args = _append(list(call.args), keyword)
        self.report(
            call,
            "basin written to JSON with `allow_nan` on: a NaN basin becomes invalid JSON; "
            "pass `allow_nan=False`",
            replacement=call.with_changes(args=args),
            fix_description="Pass `allow_nan=False`",
            safe=False,
        )


def _append(args: list[cst.Arg], new: cst.Arg) -> list[cst.Arg]:
    """``args`` with ``new`` last, laid out like its neighbours: after a trailing comma
    that ends a line, ``new`` goes on a line of its own, before the closing parenthesis."""
    if len(args) >= 2 and isinstance(args[-1].comma, cst.Comma):
        between = args[-2].comma
        if isinstance(between, cst.Comma):
            return [
                *args[:-1],
                args[-1].with_changes(comma=between),
                new.with_changes(comma=args[-1].comma),
            ]
    return [*args, new]
