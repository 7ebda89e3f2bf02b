"""Validating basin files into findings: format, size, provenance and frozen facts."""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qig_guard.basin import codes
from qig_guard.basin.legacy import detect, legacy_message, not_a_basin
from qig_guard.basin.schema import Problem, document_problems
from qig_guard.basin.settings import BASIN_KEY, BasinSettings, FrozenFacts, basin_settings
from qig_guard.basin.strictjson import JsonReadError, Locator, parse_json, read_bytes
from qig_guard.config import Config
from qig_guard.engine.findings import Finding

PARSE_LIMIT = 1024 * 1024
"""Larger files are reported as oversized and never parsed (legacy packets stay below this)."""


def _fact_problems(document: Any, facts: FrozenFacts) -> Iterator[Problem]:
    constants = document.get("physics_constants") if isinstance(document, dict) else None
    if not isinstance(constants, dict):
        return
    for fact in facts.facts:
        expected = f"{fact.value!r} ± {fact.tolerance!r} ({facts.source})"
        value = constants.get(fact.name)
        if fact.name not in constants:
            yield Problem(
                codes.FROZEN_FACTS,
                ("physics_constants",),
                f"no {fact.name}; the frozen facts fix it at {expected}",
            )
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            difference = abs(value - fact.value)
            if difference > fact.tolerance and not math.isclose(
                difference, fact.tolerance, rel_tol=1e-9, abs_tol=1e-12
            ):
                yield Problem(
                    codes.FROZEN_FACTS,
                    ("physics_constants", fact.name),
                    f"{fact.name} = {value!r} is outside the frozen facts: expected {expected}",
                )


def _size_finding(name: str, size: int, settings: BasinSettings) -> Finding | None:
    if size > settings.max_size:
        limit = f"at most {settings.max_size} bytes ({BASIN_KEY}.max-size)"
    elif size < settings.min_size:
        limit = f"at least {settings.min_size} bytes ({BASIN_KEY}.min-size)"
    else:
        return None
    unparsed = "; too large to parse" if size > PARSE_LIMIT else ""
    return Finding(
        name, 1, 1, codes.SIZE, f"file is {size} bytes; basin files are {limit}{unparsed}"
    )


def validate_basin_file(
    path: str | os.PathLike[str], settings: BasinSettings | Config | None = None
) -> list[Finding]:
    """Findings for one basin file (empty when it is valid).

    ``settings`` may be the project's :class:`~qig_guard.config.Config` (validated on
    every call: prefer :func:`~qig_guard.basin.settings.basin_settings` once for many
    files), ready :class:`BasinSettings`, or ``None`` for the defaults. Raises
    ``ConfigError`` for a bad configuration.
    """
    if not isinstance(settings, BasinSettings):
        settings = basin_settings(settings or Config())
    name = os.fspath(path)
    try:
        size = Path(path).stat().st_size
    except OSError as error:
        return [Finding(name, 1, 1, codes.MALFORMED, f"cannot read: {error.strerror or error}")]
    if size > PARSE_LIMIT:
        size_finding = _size_finding(name, size, settings)
        return [size_finding] if size_finding else []
    try:
        data = read_bytes(Path(path), PARSE_LIMIT)
    except JsonReadError as error:
        return [Finding(name, error.line, error.column, codes.MALFORMED, error.message)]
    return validate_basin_data(name, data, settings)


def validate_basin_data(name: str, data: bytes, settings: BasinSettings) -> list[Finding]:
    """Findings for a basin file's contents ``data`` (an editor's unsaved buffer, say),
    reported under ``name``; the checks of :func:`validate_basin_file`."""
    size_finding = _size_finding(name, len(data), settings)
    if len(data) > PARSE_LIMIT:
        return [size_finding] if size_finding else []
    try:
        parsed = parse_json(data)
    except JsonReadError as error:
        malformed = Finding(name, error.line, error.column, codes.MALFORMED, error.message)
        return [malformed, *([size_finding] if size_finding else [])]
    kind = detect(parsed.value)
    if kind is not None:
        return [Finding(name, 1, 1, codes.LEGACY, legacy_message(kind, name))]
    reason = not_a_basin(parsed.value)
    if reason is not None:
        return [Finding(name, 1, 1, codes.SCHEMA, f"not a basin file: {reason}")]
    problems = document_problems(parsed.value, dim=settings.dim)
    problems += _fact_problems(parsed.value, settings.frozen_facts)
    locate = Locator(parsed.text)
    findings = [Finding(name, *locate(p.anchor or p.path), p.code, str(p)) for p in problems]
    return findings + ([size_finding] if size_finding else [])


@functools.lru_cache(maxsize=256)
def _glob_regex(glob: str) -> re.Pattern[str]:
    parts = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", glob):
        if token == "**/":
            parts.append("(?:.*/)?")
        elif token == "**":
            parts.append(".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts) + r"\Z")


def _matches(relative: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(pattern.match(relative) for pattern in patterns)


def _relative(file: Path, root: Path) -> str:
    try:
        return file.resolve().relative_to(root).as_posix()
    except ValueError:
        return file.as_posix()


def basin_files(paths: Iterable[str | os.PathLike[str]], settings: BasinSettings) -> list[Path]:
    """Expand ``paths``: files as given; folders walked for ``files`` globs minus ``exclude``.

    Globs match paths relative to the configuration's root; hidden folders are skipped.
    """
    found: list[Path] = []
    for entry in map(Path, paths):
        if not entry.is_dir():
            found.append(entry)
            continue
        for file in sorted(entry.rglob("*.json")):
            if any(part.startswith(".") for part in file.relative_to(entry).parts):
                continue
            if is_basin_file(file, settings):
                found.append(file)
    return found


def is_basin_file(path: Path, settings: BasinSettings) -> bool:
    """Whether a folder walk validates ``path``: it matches a ``files`` glob and no
    ``exclude`` glob, relative to the configuration's root."""
    relative = _relative(path, settings.root)
    include = [_glob_regex(glob) for glob in settings.files]
    exclude = [_glob_regex(glob) for glob in settings.exclude]
    return _matches(relative, include) and not _matches(relative, exclude)
