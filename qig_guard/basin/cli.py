"""The ``qig-guard basin`` command's arguments (``validate``, ``convert``).

``qig_guard.cli`` calls :func:`register` with its sub-parsers, for every command:
so this module imports nothing of the basin package's readers and validators, and
:mod:`qig_guard.basin.commands` is imported only when a basin command runs.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from qig_guard.basin.fields import SUPPLIABLE
from qig_guard.cli import add_output_options


def _validate(args: argparse.Namespace) -> int:
    from qig_guard.basin.commands import run_validate

    return run_validate(args)


def _convert(args: argparse.Namespace) -> int:
    from qig_guard.basin.commands import run_convert

    return run_convert(args)


def _assignment(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not value:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    if name.startswith("physics_constants.") and name.count(".") == 1:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise argparse.ArgumentTypeError(f"{name}: expected a finite number, got {value!r}")
        return name, number
    from qig_guard.basin.fields import ALIASES
    from qig_guard.basin.legacy import normalise_timestamp

    if name == "timestamp":
        if normalise_timestamp(value) is None:
            raise argparse.ArgumentTypeError(f"timestamp: {value!r} is not an ISO 8601 date")
        return name, normalise_timestamp(value)
    name = ALIASES.get(name, name)
    if name in ("source_model", "provenance.extracted_from"):
        return name, value
    raise argparse.ArgumentTypeError(f"cannot set {name!r}; settable: {', '.join(SUPPLIABLE)}")


def register(subparsers: Any) -> None:
    """Add the ``basin`` command (``validate``, ``convert``) to an argparse sub-parser set."""
    basin = subparsers.add_parser("basin", help="validate and convert basin JSON files")
    commands = basin.add_subparsers(dest="basin_command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="validate basin files (files or folders)")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    add_output_options(validate)  # the same as `check`'s
    validate.add_argument("--config", type=Path, metavar="PYPROJECT")
    validate.set_defaults(func=_validate)

    conversion = commands.add_parser("convert", help="convert a legacy basin file to version 1")
    conversion.add_argument("source", type=Path, metavar="OLD.json")
    conversion.add_argument("-o", "--output", type=Path, required=True, metavar="NEW.json")
    conversion.add_argument(
        "--set",
        dest="supplied",
        type=_assignment,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help=f"supply a field the old file lacks ({', '.join(SUPPLIABLE)})",
    )
    conversion.add_argument("--force", action="store_true", help="overwrite NEW.json")
    conversion.add_argument("--config", type=Path, metavar="PYPROJECT")
    conversion.set_defaults(func=_convert)
