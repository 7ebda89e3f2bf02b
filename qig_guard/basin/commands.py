"""What ``qig-guard basin validate`` and ``qig-guard basin convert`` do.

:mod:`qig_guard.basin.cli` builds their arguments and imports this module only when
one of them runs. Exit codes: 0 valid, 1 findings, 2 usage, configuration or
internal error.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from qig_guard.basin.codes import BASIN_RULES
from qig_guard.basin.files import encode, write_atomically
from qig_guard.basin.legacy import Conversion, convert, describe, not_a_basin
from qig_guard.basin.schema import document_problems
from qig_guard.basin.settings import BasinSettings, basin_settings
from qig_guard.basin.strictjson import JsonReadError, read_json
from qig_guard.basin.validate import PARSE_LIMIT, basin_files, validate_basin_file
from qig_guard.config import discover, load_pyproject
from qig_guard.engine.findings import ordered
from qig_guard.engine.report import render

BASIN_AUTOMATION = "qig-guard/basin-validate/"


def _settings(args: argparse.Namespace) -> BasinSettings:
    return basin_settings(load_pyproject(args.config) if args.config else discover())


def _error(message: str) -> int:
    print(f"qig-guard: error: {message}", file=sys.stderr)
    return 2


def run_validate(args: argparse.Namespace) -> int:
    """``qig-guard basin validate PATH...``."""
    settings = _settings(args)
    missing = [path for path in args.paths if not Path(path).exists()]
    if missing:
        return _error(f"{missing[0]}: no such file or folder")
    output: Path | None = args.output_file
    if output and not output.parent.is_dir():
        return _error(f"{output.parent}: no such folder")
    files: list[Path] = []
    for path in args.paths:
        found = basin_files([path], settings)
        if not found and Path(path).is_dir() and not args.silent:
            globs = ", ".join(settings.files)
            print(
                f"qig-guard: warning: no basin files found in {path} (files globs: {globs})",
                file=sys.stderr,
            )
        files += found
    if any(Path(path).is_dir() for path in args.paths) and not (args.quiet or args.silent):
        print(f"{len(files)} basin file{'' if len(files) == 1 else 's'} checked", file=sys.stderr)
    findings = ordered(finding for path in files for finding in validate_basin_file(path, settings))
    report = render(
        findings,
        args.format,
        BASIN_RULES,
        files_checked=len(files),
        statistics=args.statistics,
        automation_id=BASIN_AUTOMATION,
    )
    if not args.silent:
        from qig_guard.cli import write_report

        write_report(report, output)
    return 1 if findings and not args.exit_zero else 0


def _summary(source: Path, conversion: Conversion) -> str:
    lines = [f"{source}: {describe(conversion.kind)}"]
    for label, names in (
        ("kept", conversion.kept),
        ("dropped", conversion.dropped),
        ("not in the file (optional)", conversion.absent),
    ):
        if names:
            lines.append(f"  {label}: {', '.join(names)}")
    return "\n".join(lines) + "\n"


def run_convert(args: argparse.Namespace) -> int:
    """``qig-guard basin convert OLD.json -o NEW.json``."""
    settings = _settings(args)
    source: Path = args.source
    output: Path = args.output
    if not source.is_file():
        return _error(f"{source}: no such file")
    if output.exists() and not args.force:
        return _error(f"{output} exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        return _error(f"{output.parent}: no such folder")
    try:
        parsed = read_json(source, PARSE_LIMIT)
    except JsonReadError as error:
        print(f"{source}:{error}")
        return 1
    if not document_problems(parsed.value):
        print(f"{source}: already a version 1 basin file; nothing to convert")
        return 0
    reason = not_a_basin(parsed.value)
    if reason is not None:
        print(f"{source}: not a basin file: {reason}")
        return 1
    try:
        conversion = convert(
            parsed.value,
            path=source.as_posix(),
            sha256=hashlib.sha256(parsed.text.encode("utf-8")).hexdigest(),
            supplied=dict(args.supplied),
        )
    except ValueError as error:
        print(f"{source}: {error}")
        return 1
    sys.stdout.write(_summary(source, conversion))
    if conversion.error or conversion.document is None:
        print(f"{source}: {conversion.error}")
        return 1
    problems = document_problems(conversion.document, dim=settings.dim)
    if problems:
        print(f"{source}: not converted, the result would not be a valid basin file:")
        sys.stdout.write("".join(f"  {problem}\n" for problem in problems))
        return 1
    try:
        data = encode(conversion.document).encode("utf-8")
    except UnicodeEncodeError as error:
        bad = error.object[error.start : error.end].encode("unicode_escape").decode("ascii")
        return _error(f"{source}: a string holds {bad}, which UTF-8 cannot encode; not converted")
    if output.is_dir():
        return _error(f"{output} is a folder; not converted")
    try:
        write_atomically(output, data)
    except OSError as error:
        return _error(f"cannot write {output}: {error.strerror or error}; not converted")
    print(f"wrote {output} ({len(data)} bytes)")
    findings = ordered(validate_basin_file(output, settings))
    sys.stdout.write(render(findings, "text", BASIN_RULES, files_checked=1))
    return 1 if findings else 0
