"""Basin validation settings: ``[tool.qig-guard.basin]`` and ``[tool.qig-guard.frozen-facts]``.

``Config`` keeps both tables raw; they are validated here and every error names
its full key.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qig_guard.basin.schema import schema
from qig_guard.config import BASIN_KEYS, FACT_KEYS, SECTION, Config, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

BASIN_KEY = f"{SECTION}.basin"
FACTS_KEY = f"{SECTION}.frozen-facts"
DEFAULT_FILES = ("**/*basin*.json", "**/basin/**/*.json", "**/basins/**/*.json")
DEFAULT_DIM: int = schema()["properties"]["dim"]["default"]
"""The spec's basin dimension, as the basin file schema states it (``dim``'s default)."""


@dataclass(frozen=True)
class FrozenFact:
    """A physics constant the team has measured: ``value`` ± ``tolerance``."""

    name: str
    value: float
    tolerance: float


@dataclass(frozen=True)
class FrozenFacts:
    """The constants a basin's ``physics_constants`` must match, and where they came from."""

    facts: tuple[FrozenFact, ...]
    source: str


DEFAULT_FACTS = FrozenFacts(
    facts=(FrozenFact("kappa_eff", 64.21, 0.92), FrozenFact("beta", 0.44, 0.04)),
    source="qig-guard's built-in frozen facts",
)


@dataclass(frozen=True)
class BasinSettings:
    """Everything ``validate_basin_file`` needs besides the file."""

    dim: int = DEFAULT_DIM
    min_size: int = 0
    max_size: int = 4096
    files: tuple[str, ...] = DEFAULT_FILES
    exclude: tuple[str, ...] = ()
    frozen_facts: FrozenFacts = DEFAULT_FACTS
    root: Path = field(default_factory=Path.cwd)


def _size(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(key, f"expected a size in bytes (an integer >= 0), got {value!r}")
    return value


def _dim(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, f"expected the basin dimension (an integer >= 1), got {value!r}")
    return value


def _globs(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(key, f"expected a non-empty list of globs, got {value!r}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{key}[{index}]", "expected a non-empty string")
    return tuple(value)


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"expected a finite number, got {value!r}")
    return float(value)


def parse_facts(key: str, table: Mapping[str, Any], source: str) -> FrozenFacts:
    """Validate a ``constant = { value = ..., tolerance = ... }`` table."""
    facts = []
    for name, entry in table.items():
        entry_key = f"{key}.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(entry_key, "expected a table { value = ..., tolerance = ... }")
        unknown = sorted(set(entry) - set(FACT_KEYS))
        if unknown:
            raise ConfigError(f"{entry_key}.{unknown[0]}", "unknown key (known: value, tolerance)")
        for member in FACT_KEYS:
            if member not in entry:
                raise ConfigError(f"{entry_key}.{member}", "missing")
        tolerance = _number(f"{entry_key}.tolerance", entry["tolerance"])
        if tolerance < 0:
            raise ConfigError(f"{entry_key}.tolerance", f"must be >= 0, got {tolerance!r}")
        facts.append(FrozenFact(name, _number(f"{entry_key}.value", entry["value"]), tolerance))
    return FrozenFacts(tuple(facts), source)


def _facts_file(path: Path) -> FrozenFacts:
    try:
        data = path.read_bytes()
        table = json.loads(data) if path.suffix == ".json" else tomllib.loads(data.decode())
    except OSError as error:
        raise ConfigError(FACTS_KEY, f"cannot read facts file {path}: {error.strerror}") from None
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(FACTS_KEY, f"facts file {path} is not valid: {error}") from None
    if not isinstance(table, dict):
        raise ConfigError(FACTS_KEY, f"facts file {path}: expected a table of constants")
    return parse_facts(f"{path}", table, f"frozen facts file {path}")


def frozen_facts(config: Config) -> FrozenFacts:
    """The team's frozen facts: a table, a TOML/JSON file, or the built-in defaults."""
    raw = config.frozen_facts
    if isinstance(raw, str):
        return _facts_file(config.root / raw)
    if not raw:
        return DEFAULT_FACTS
    where = config.source.name if config.source else "configuration"
    return parse_facts(FACTS_KEY, raw, f"{where} [{FACTS_KEY}]")


def basin_settings(config: Config) -> BasinSettings:
    """Validate the basin tables of ``config``; raises ``ConfigError`` naming the key."""
    values: dict[str, Any] = {}
    for key, value in config.basin.items():
        full = f"{BASIN_KEY}.{key}"
        if key in ("min-size", "max-size"):
            values[key.replace("-", "_")] = _size(full, value)
        elif key == "files":
            values["files"] = _globs(full, value)
        elif key == "dim":
            values["dim"] = _dim(full, value)
        else:
            raise ConfigError(full, f"unknown key (known keys: {', '.join(BASIN_KEYS)})")
    settings = BasinSettings(
        **values,
        exclude=config.exclude + config.extend_exclude,
        frozen_facts=frozen_facts(config),
        root=config.root.resolve(),
    )
    if settings.min_size > settings.max_size:
        raise ConfigError(
            f"{BASIN_KEY}.min-size",
            f"{settings.min_size} is larger than max-size {settings.max_size}",
        )
    return settings
