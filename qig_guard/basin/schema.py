"""The basin file format, version 1: its JSON Schema and the rules a schema cannot state.

The schema ships as package data and is loaded once per process. A schema
cannot say "``basin`` has exactly ``dim`` numbers", "the timestamp is a real
date" or "no value is NaN"; :func:`document_problems` adds those checks.
Timestamps are read by :func:`parse_timestamp`, which uses the schema's own
pattern, so the two never disagree about what a timestamp may look like.
"""

from __future__ import annotations

import functools
import json
import math
import re
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


@functools.cache
def _timestamp_pattern() -> re.Pattern[str]:
    pattern: str = schema()["properties"]["timestamp"]["pattern"]
    return re.compile(pattern)


def parse_timestamp(text: str) -> datetime:
    """A basin timestamp as a ``datetime``; raises ``ValueError`` for anything else.

    Accepts what the schema's pattern accepts (RFC 3339 / ISO 8601 date-times:
    ``Z``, numeric offsets with or without a colon, fractional seconds of any length,
    or no offset) when it is a real calendar date, the same on every Python version
    (3.10's ``fromisoformat`` knows neither ``Z`` nor 7+ fractional digits).
    Fractional seconds beyond microseconds are truncated.
    """
    if not _timestamp_pattern().fullmatch(text):
        raise ValueError("expected an ISO 8601 date-time such as 2025-11-24T12:34:56Z")
    date_time, offset = text[:19], text[19:]
    fraction = ""
    if offset.startswith("."):
        digits = len(offset) - len(offset[1:].lstrip("0123456789"))
        fraction, offset = "." + (offset[1:digits] + "000000")[:6], offset[digits:]
    if offset in ("Z", "z"):
        offset = "+00:00"
    elif len(offset) == 5:  # +HHMM
        offset = f"{offset[:3]}:{offset[3:]}"
    return datetime.fromisoformat(f"{date_time[:10]}T{date_time[11:]}{fraction}{offset}")


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
            parse_timestamp(timestamp)
        except ValueError as error:
            yield Problem(codes.SCHEMA, ("timestamp",), f"{timestamp!r} is not a date: {error}")


def _dim_problems(document: dict[str, Any], expected: int) -> Iterator[Problem]:
    """A consistent ``dim`` (the basin's length) other than ``expected``."""
    dim, basin = document.get("dim"), document.get("basin")
    if isinstance(basin, list) and len(basin) == dim != expected:
        yield Problem(
            codes.SCHEMA,
            ("dim",),
            f"is {dim}, but basins here are {expected}-dimensional "
            "([tool.qig-guard.basin] dim, default 64 as in the spec)",
        )


def document_problems(document: Any, *, dim: int | None = None) -> list[Problem]:
    """Every way ``document`` (parsed JSON) breaks the version 1 format; with ``dim``,
    also a ``dim`` other than the expected dimension."""
    non_finite = list(_non_finite(document, ()))
    problems = non_finite + list(_schema_problems(document))
    if isinstance(document, dict):
        reported = {problem.path for problem in problems}
        problems += _semantic_problems(document, reported)
        if dim is not None and ("dim",) not in reported:
            problems += _dim_problems(document, dim)
    return problems
