"""The basin file format, version 1: its JSON Schema and the rules a schema cannot state.

The schema ships as package data and is loaded once per process. A schema
cannot say "``basin`` has exactly ``dim`` numbers", "the timestamp is a real
date" or "no value is NaN"; :func:`document_problems` adds those checks.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from qig_guard.basin import codes
from qig_guard.basin.strictjson import JsonPath, json_path

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

SCHEMA_FILE = "basin-v1.schema.json"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Problem:
    """One way a document breaks the format, at a JSON path."""

    code: str
    path: JsonPath
    message: str
    anchor: JsonPath | None = None
    """Where to point in the file when that is not ``path`` (an unexpected key)."""

    def __str__(self) -> str:
        return f"{json_path(self.path)}: {self.message}"


def schema() -> dict[str, Any]:
    """The version 1 schema as a fresh dictionary."""
    text = resources.files("qig_guard.basin").joinpath(SCHEMA_FILE).read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@functools.cache
def _validator() -> Draft202012Validator:
    # imported here: `qig-guard check` and `--version` never pay for jsonschema
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def _non_finite(value: Any, path: JsonPath) -> Iterator[Problem]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, (*path, index))
    elif isinstance(value, float) and not math.isfinite(value):
        what = "NaN" if math.isnan(value) else "infinite (Infinity, or beyond the float range)"
        yield Problem(codes.NON_FINITE, path, f"is {what}: not a finite number")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**1024:
        yield Problem(codes.NON_FINITE, path, "integer too large for a 64-bit float")


def _is_provenance(error: Any) -> bool:
    path = tuple(error.absolute_path)
    if path[:1] == ("provenance",):
        return True
    return path == () and error.message == "'provenance' is a required property"


def _anchor(error: Any, path: JsonPath) -> JsonPath | None:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return None
    known = error.schema.get("properties", {})
    extra = [key for key in error.instance if key not in known]
    return (*path, extra[0]) if extra else None


def _schema_problems(document: Any) -> Iterator[Problem]:
    basin = document.get("basin") if isinstance(document, dict) else None
    stack = isinstance(basin, list) and bool(basin) and all(isinstance(v, list) for v in basin)
    if stack:
        assert isinstance(basin, list)
        yield Problem(
            codes.SCHEMA,
            ("basin",),
            f"a stack of {len(basin)} vectors; a basin file holds one identity vector "
            "(write one file per model)",
        )
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.path)))
    for error in errors:
        path = tuple(error.absolute_path)
        if stack and path[:1] == ("basin",):
            continue
        code = codes.PROVENANCE if _is_provenance(error) else codes.SCHEMA
        yield Problem(code, path, error.message, _anchor(error, path))


def _semantic_problems(document: dict[str, Any], reported: set[JsonPath]) -> Iterator[Problem]:
    dim = document.get("dim")
    if isinstance(dim, (int, float)) and not isinstance(dim, bool) and ("dim",) not in reported:
        for key in ("basin", "fisher_diag"):
            values = document.get(key)
            if (key,) in reported:
                continue
            if isinstance(values, list) and values and len(values) != dim:
                yield Problem(codes.SCHEMA, (key,), f"has {len(values)} entries but dim is {dim:g}")
    timestamp = document.get("timestamp")
    if isinstance(timestamp, str) and ("timestamp",) not in reported:
        try:
            datetime.fromisoformat(timestamp)
        except ValueError as error:
            yield Problem(codes.SCHEMA, ("timestamp",), f"{timestamp!r} is not a date: {error}")


def document_problems(document: Any) -> list[Problem]:
    """Every way ``document`` (parsed JSON) breaks the version 1 format."""
    non_finite = list(_non_finite(document, ()))
    problems = non_finite + list(_schema_problems(document))
    if isinstance(document, dict):
        problems += _semantic_problems(document, {problem.path for problem in problems})
    return problems
