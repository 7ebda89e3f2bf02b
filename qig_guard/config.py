"""``[tool.qig-guard]`` configuration: discovery, validation and defaults.

Every key is validated here and an error names the key, so a typo in a
team's ``pyproject.toml`` fails loudly instead of silently doing nothing.
The ``basin`` and ``frozen-facts`` tables are kept raw and validated by
:mod:`qig_guard.basin`, which owns them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SECTION = "tool.qig-guard"


class ConfigError(Exception):
    """A configuration problem; ``key`` is the dotted key at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _str_list(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(key, f"expected a list of strings, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{key}[{index}]", "expected a non-empty string")
    return tuple(value)


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise ConfigError(key, f"expected a Python identifier, got {value!r}")
    return value


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, f"expected a positive integer, got {value!r}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {value!r}")
    return value


def _range(key: str, value: Any) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or not 0 <= value[0] <= value[1] <= 1
    ):
        raise ConfigError(key, f"expected [low, high] with 0 <= low <= high <= 1, got {value!r}")
    return (float(value[0]), float(value[1]))


def _per_file_ignores(key: str, value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a table of glob = [codes], got {type(value).__name__}")
    return tuple((glob, _codes(f'{key}."{glob}"', codes)) for glob, codes in value.items())


def is_code_pattern(code: str) -> bool:
    """``ALL``, a rule code (``QIG001``) or a code prefix (``QIG00``, ``QIG``)."""
    return code == "ALL" or (code.startswith("QIG") and (code[3:] == "" or code[3:].isdigit()))


def _codes(key: str, value: Any) -> tuple[str, ...]:
    codes = _str_list(key, value)
    for index, code in enumerate(codes):
        if not is_code_pattern(code):
            raise ConfigError(f"{key}[{index}]", f"{code!r} is not a rule code like QIG001")
    return codes


def _table(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a table, got {type(value).__name__}")
    return value


BASIN_KEYS = ("dim", "files", "max-size", "min-size")
FACT_KEYS = ("value", "tolerance")


def _known_keys(key: str, table: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key (known keys: {', '.join(known)})")


def _basin_table(key: str, value: Any) -> Mapping[str, Any]:
    """Key names only: the values are validated by :mod:`qig_guard.basin.settings`."""
    table = _table(key, value)
    _known_keys(key, table, BASIN_KEYS)
    return table


def _facts_table_or_path(key: str, value: Any) -> Mapping[str, Any] | str:
    """Key names only: the values are validated by :mod:`qig_guard.basin.settings`."""
    if isinstance(value, str):
        return value
    table = _table(key, value)
    for name, entry in table.items():
        if isinstance(entry, dict):
            _known_keys(f"{key}.{name}", entry, FACT_KEYS)
    return table


@dataclass(frozen=True)
class Config:
    """Settings for one run. Field names are the TOML keys with ``-`` as ``_``."""

    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    max_file_size: int = 1_000_000
    strict_noqa: bool = False
    cache_dir: str = ".qig-guard-cache"
    # Names that carry meaning in a team's code (see qig_guard.names).
    frozen_models: tuple[str, ...] = ("ocean",)
    basin_names: tuple[str, ...] = ("*basin*",)
    active_models: tuple[str, ...] = ("active",)
    basin_setter: str = "set_target_basin"
    protected_attribute: str = "target_basin"
    basin_owners: tuple[str, ...] = ("basin_matcher",)
    basin_tables: tuple[str, ...] = ("*basins", "basin_table*", "basin_bank", "basin_history")
    sleep_functions: tuple[str, ...] = ("sleep*", "consolidat*", "dream", "dreams", "dreaming")
    weight_copy_allowed: tuple[str, ...] = (
        "ema",
        "swa",
        "averaged",
        "target_net",
        "target_network",
    )
    sync_weight_range: tuple[float, float] = (0.05, 0.1)
    # Owned by qig_guard.basin: kept raw here, validated there.
    basin: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    frozen_facts: Mapping[str, Any] | str = field(default_factory=dict, hash=False, compare=False)
    # Where the configuration came from (None: defaults only).
    source: Path | None = field(default=None, compare=False)

    @property
    def root(self) -> Path:
        """The directory that relative globs are resolved against."""
        return self.source.parent if self.source else Path.cwd()

    def fingerprint(self) -> str:
        """A stable hash of everything that can change a check's result."""
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in {"source", "cache_dir", "basin", "frozen_facts"}
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "select": _codes,
    "ignore": _codes,
    "exclude": _str_list,
    "extend-exclude": _str_list,
    "per-file-ignores": _per_file_ignores,
    "max-file-size": _positive_int,
    "strict-noqa": _bool,
    "cache-dir": lambda key, value: _str_list(key, [value])[0],
    "frozen-models": _str_list,
    "basin-names": _str_list,
    "active-models": _str_list,
    "basin-setter": _str,
    "protected-attribute": _str,
    "basin-owners": _str_list,
    "basin-tables": _str_list,
    "sleep-functions": _str_list,
    "weight-copy-allowed": _str_list,
    "sync-weight-range": _range,
    "basin": _basin_table,
    "frozen-facts": _facts_table_or_path,
}


def parse_table(table: Mapping[str, Any], source: Path | None = None) -> Config:
    """Validate a ``[tool.qig-guard]`` table and build a :class:`Config`."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        parser = _PARSERS.get(key)
        if parser is None:
            known = ", ".join(sorted(_PARSERS))
            raise ConfigError(f"{SECTION}.{key}", f"unknown key (known keys: {known})")
        values[key.replace("-", "_")] = parser(f"{SECTION}.{key}", value)
    return Config(source=source, **values)


def load_pyproject(path: Path) -> Config:
    """Read ``[tool.qig-guard]`` from one ``pyproject.toml`` (defaults if absent)."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(str(path), f"cannot read: {error.strerror}") from None
    table = document.get("tool", {}).get("qig-guard", {})
    if not isinstance(table, dict):
        raise ConfigError(SECTION, "expected a table")
    return parse_table(table, source=path.resolve())


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.qig-guard]`` table, from ``start`` up."""
    directory = start.resolve()
    if directory.is_file():
        directory = directory.parent
    for candidate in (directory, *directory.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            try:
                text = pyproject.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if "[tool.qig-guard" in text:
                return pyproject
    return None


def discover(start: Path | None = None) -> Config:
    """The configuration that applies to a run started in ``start`` (default: cwd)."""
    pyproject = find_pyproject(start or Path.cwd())
    return load_pyproject(pyproject) if pyproject else Config()


def with_overrides(config: Config, **overrides: Any) -> Config:
    """``config`` with CLI overrides applied (``None`` values are ignored)."""
    return replace(config, **{key: value for key, value in overrides.items() if value is not None})
