"""Which rule codes run on a file: the configuration's selection minus its per-file-ignores."""

from __future__ import annotations

from pathlib import Path

from qig_guard.config import Config
from qig_guard.engine.discovery import matches_glob, relative_posix
from qig_guard.rules import select_codes


def selected_codes(config: Config) -> tuple[str, ...]:
    """The codes ``config`` selects (``select`` minus ``ignore``)."""
    return select_codes(config.select, config.ignore, config.preview)


def file_codes(relative: str, selected: tuple[str, ...], config: Config) -> tuple[str, ...]:
    """``selected`` minus the codes that ``per-file-ignores`` removes for this path."""
    ignored = {
        code
        for glob, codes in config.per_file_ignores
        if matches_glob(relative, glob)
        for code in codes
    }
    if not ignored:
        return selected
    return tuple(c for c in selected if not any(c.startswith(i) or i == "ALL" for i in ignored))


def codes_for(path: Path, config: Config) -> tuple[str, ...]:
    """The codes that run on ``path`` under ``config``."""
    return file_codes(relative_posix(path, config.root), selected_codes(config), config)
