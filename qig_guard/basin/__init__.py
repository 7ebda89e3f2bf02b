"""Basin files: the versioned JSON format, its reader, writer, validator and legacy converter.

Torch-free and libcst-free: this package runs in a bare pre-commit environment.
:mod:`qig_guard.basin.verify` (checking a file against its checkpoint) imports the
torch runtime only when it re-extracts a basin. The names below are imported on
first use, so that building the command line (:mod:`qig_guard.basin.cli`) loads
none of the readers and validators.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qig_guard.basin.codes import BASIN_RULES
    from qig_guard.basin.files import BasinFile, BasinFileError, load_basin, save_basin
    from qig_guard.basin.settings import BasinSettings, basin_settings
    from qig_guard.basin.validate import basin_files, is_basin_file, validate_basin_file

_HOMES = {
    "BASIN_RULES": "codes",
    "BasinFile": "files",
    "BasinFileError": "files",
    "load_basin": "files",
    "save_basin": "files",
    "BasinSettings": "settings",
    "basin_settings": "settings",
    "basin_files": "validate",
    "is_basin_file": "validate",
    "validate_basin_file": "validate",
}

__all__ = [
    "BASIN_RULES",
    "BasinFile",
    "BasinFileError",
    "BasinSettings",
    "basin_files",
    "basin_settings",
    "is_basin_file",
    "load_basin",
    "save_basin",
    "validate_basin_file",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
