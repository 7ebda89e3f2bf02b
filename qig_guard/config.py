"""``[tool.qig-guard]`` configuration: discovery, validation and defaults.

Every key is validated here and an error names the key, so a typo in a
team's ``pyproject.toml`` fails loudly instead of silently doing nothing.
The ``basin`` and ``frozen-facts`` tables are kept raw and validated by
:mod:`qig_guard.basin`, which owns them.
"""

from __future__ import annotations

import hashlib
import json
import os
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


def selector_problem(code: str) -> str | None:
    """Why ``code`` is not a usable selector, or ``None`` when it selects some rule."""
    from qig_guard.rules import all_codes

    if not is_code_pattern(code):
        return f"{code!r} is not a rule code like QIG001"
    if code != "ALL" and not any(known.startswith(code) for known in all_codes()):
        return f"{code!r} matches no rule (`qig-guard rules` lists them)"
    return None


def _codes(key: str, value: Any) -> tuple[str, ...]:
    codes = _str_list(key, value)
    for index, code in enumerate(codes):
        problem = selector_problem(code)
        if problem:
            raise ConfigError(f"{key}[{index}]", problem)
    return codes


def _selection(key: str, value: Any) -> tuple[str, ...]:
    codes = _codes(key, value)
    if not codes:
        raise ConfigError(key, "empty selection: no rule would run (use ALL for every rule)")
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
    preview: bool = False
    cache_dir: str = ".qig-guard-cache"
    # Names that carry meaning in a team's code (see qig_guard.facts.words).
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
    # The project root of a run without a configuration file (None: unknown).
    base: Path | None = field(default=None, compare=False)
    # Measure each rule's time in the traversal (``--statistics``); not a TOML key.
    time_rules: bool = field(default=False, compare=False)

    @property
    def root(self) -> Path:
        """The directory that relative globs are resolved against."""
        if self.source:
            return self.source.parent
        return self.base or Path.cwd()

    @property
    def cache_path(self) -> Path | None:
        """The cache folder: at the project root, never in the working directory
        (``None`` for a file outside any project, which is then not cached)."""
        if self.source:
            return self.source.parent / self.cache_dir
        return self.base / self.cache_dir if self.base else None

    def fingerprint(self) -> str:
        """A stable hash of everything that can change a check's result."""
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in {"source", "base", "cache_dir", "basin", "frozen_facts", "time_rules"}
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "select": _selection,
    "ignore": _codes,
    "exclude": _str_list,
    "extend-exclude": _str_list,
    "per-file-ignores": _per_file_ignores,
    "max-file-size": _positive_int,
    "strict-noqa": _bool,
    "preview": _bool,
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


def parse_table(
    table: Mapping[str, Any], source: Path | None = None, section: str = SECTION
) -> Config:
    """Validate a ``[tool.qig-guard]`` table (or a ``qig-guard.toml`` document, with
    ``section=""``) and build a :class:`Config`."""
    prefix = f"{section}." if section else ""
    for key in table:
        if key not in _PARSERS:
            known = ", ".join(sorted(_PARSERS))
            raise ConfigError(f"{prefix}{key}", f"unknown key (known keys: {known})")
    values = {
        key.replace("-", "_"): _PARSERS[key](f"{prefix}{key}", value)
        for key, value in table.items()
    }
    return Config(source=source, **values)


OWN_FILE = "qig-guard.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(str(path), f"cannot read: {error.strerror}") from None


def load_pyproject(path: Path) -> Config:
    """Read a configuration file: ``[tool.qig-guard]`` of a ``pyproject.toml`` (or of
    any file with a ``[tool]`` table), or a whole ``qig-guard.toml`` (the same keys at
    top level). Defaults if absent."""
    document = _read_toml(path)
    if path.name != "pyproject.toml" and "tool" not in document:
        return parse_table(document, source=path.resolve(), section="")
    table = document.get("tool", {}).get("qig-guard", {})
    if not isinstance(table, dict):
        raise ConfigError(SECTION, "expected a table")
    return parse_table(table, source=path.resolve())


def settings_file(directory: Path) -> Path | None:
    """The file in ``directory`` that configures qig-guard: ``qig-guard.toml``, or a
    ``pyproject.toml`` with a ``[tool.qig-guard]`` table."""
    own = directory / OWN_FILE
    if own.is_file():
        return own
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        text = pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if "qig-guard" not in text:
        return None
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return pyproject  # mentions qig-guard: loading it reports the error
    return pyproject if isinstance(tool, dict) and "qig-guard" in tool else None


def find_pyproject(start: Path) -> Path | None:
    """The nearest configuration file (see :func:`settings_file`), from ``start`` up."""
    directory = start.resolve()
    if directory.is_file():
        directory = directory.parent
    for candidate in (directory, *directory.parents):
        found = settings_file(candidate)
        if found:
            return found
    return None


def discover(start: Path | None = None) -> Config:
    """The configuration that applies to a run started in ``start`` (default: cwd);
    without a configuration file, the defaults rooted at ``start``."""
    start = start or Path.cwd()
    pyproject = find_pyproject(start)
    return load_pyproject(pyproject) if pyproject else Config(base=start.resolve())


PROJECT_MARKERS = (".git", ".hg", "pyproject.toml", OWN_FILE)


class ConfigResolver:
    """The configuration of each file, as Ruff resolves it: the nearest
    ``qig-guard.toml`` or ``pyproject.toml`` with qig-guard settings in the
    file's folder or above, whatever the working directory, with the command
    line's overrides applied (``adjust``). A file under no such file gets the
    defaults, rooted at its project: the nearest folder with ``.git``, ``.hg`` or
    a ``pyproject.toml``. ``fixed`` (``--config``) applies to every file;
    ``isolated`` (``--isolated``) gives every file the defaults."""

    def __init__(
        self,
        adjust: Callable[[Config], Config] | None = None,
        *,
        fixed: Config | None = None,
        isolated: bool = False,
    ) -> None:
        self._adjust = adjust or (lambda config: config)
        self._fixed = self._adjust(fixed) if fixed is not None else None
        self._isolated = isolated
        self._by_directory: dict[Path, Config] = {}
        self._by_file: dict[Path, Config] = {}
        self._by_root: dict[Path | None, Config] = {}

    def for_path(self, path: Path) -> Config:
        """The configuration of the file or folder ``path`` (from its parent folder)."""
        return self.for_folder(Path(os.path.normpath(path.absolute())).parent)

    def for_folder(self, directory: Path) -> Config:
        """The configuration of the files in ``directory``."""
        if self._fixed is not None:
            return self._fixed
        directory = Path(os.path.normpath(directory.absolute()))
        visited: list[Path] = []
        marker: Path | None = None
        config: Config | None = None
        for candidate in (directory, *directory.parents):
            config = self._by_directory.get(candidate)
            if config is not None:
                break
            visited.append(candidate)
            found = None if self._isolated else settings_file(candidate)
            if found is not None:
                config = self._load(found)
                break
            if marker is None and any((candidate / name).exists() for name in PROJECT_MARKERS):
                marker = candidate
                if self._isolated:
                    break
        if config is None or config.source is None:
            root = marker if marker is not None or config is None else config.base
            if root not in self._by_root:
                self._by_root[root] = self._adjust(Config(base=root))
            config = self._by_root[root]
        for candidate in visited:
            # Defaults are remembered only inside their project (a folder above it may
            # belong to another), or where no project was found at or above: there a
            # project below is still found, by its marker, before the folder is reached.
            if (
                config.source is not None
                or config.base is None
                or candidate.is_relative_to(config.base)
            ):
                self._by_directory[candidate] = config
        return config

    def _load(self, path: Path) -> Config:
        if path not in self._by_file:
            self._by_file[path] = self._adjust(load_pyproject(path))
        return self._by_file[path]


def with_overrides(config: Config, **overrides: Any) -> Config:
    """``config`` with CLI overrides applied (``None`` values are ignored)."""
    return replace(config, **{key: value for key, value in overrides.items() if value is not None})
