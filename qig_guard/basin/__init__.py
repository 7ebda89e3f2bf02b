"""Basin files: the versioned JSON format, its reader, writer, validator and legacy converter.

Torch-free and libcst-free: this package runs in a bare pre-commit environment.
:mod:`qig_guard.basin.verify` (checking a file against its checkpoint) imports the
torch runtime only when it re-extracts a basin.
"""

from qig_guard.basin.codes import BASIN_RULES
from qig_guard.basin.files import BasinFile, BasinFileError, load_basin, save_basin
from qig_guard.basin.settings import BasinSettings, basin_settings
from qig_guard.basin.validate import basin_files, is_basin_file, validate_basin_file

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
