"""The ``qig-guard`` command line: ``check``, ``rules``, ``explain``, ``server`` and ``basin``.

Exit codes: 0 clean, 1 findings, 2 usage, configuration or internal error.
Start-up stays cheap: libcst is imported only when a file must be parsed,
torch never.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from qig_guard import __version__
from qig_guard.config import (
    Config,
    ConfigError,
    discover,
    is_code_pattern,
    load_pyproject,
    with_overrides,
)
from qig_guard.report import FORMATS

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input; reported with exit code 2."""


def _codes(value: str) -> tuple[str, ...]:
    codes = tuple(code.strip().upper() for code in value.split(",") if code.strip())
    for code in codes:
        if not is_code_pattern(code):
            raise argparse.ArgumentTypeError(f"{code!r} is not a rule code like QIG001")
    return codes


def _globs(value: str) -> tuple[str, ...]:
    return tuple(glob.strip() for glob in value.split(",") if glob.strip())


def load_config(args: argparse.Namespace) -> Config:
    """The project's configuration (``--config``, ``--isolated`` or discovered)."""
    if getattr(args, "isolated", False):
        return Config()
    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError("--config", f"no such file: {path}")
        return load_pyproject(path)
    return discover()


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", metavar="PATH", help="pyproject.toml to read (default: nearest)")
    group.add_argument("--isolated", action="store_true", help="ignore configuration files")


def _check_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check Python files for basin-transfer violations",
        description="Check Python files and report `path:line:col: CODE message`.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="files or directories (default: .)")
    rules = parser.add_argument_group("rule selection")
    rules.add_argument("--select", type=_codes, metavar="CODES", help="comma-separated codes")
    rules.add_argument("--ignore", type=_codes, metavar="CODES", help="comma-separated codes")
    rules.add_argument("--extend-select", type=_codes, metavar="CODES", default=())
    rules.add_argument("--extend-ignore", type=_codes, metavar="CODES", default=())
    files = parser.add_argument_group("files")
    files.add_argument("--exclude", type=_globs, metavar="GLOBS", help="replace exclude globs")
    files.add_argument("--extend-exclude", type=_globs, metavar="GLOBS", default=())
    files.add_argument("--max-file-size", type=int, metavar="BYTES")
    output = parser.add_argument_group("output")
    output.add_argument("--format", choices=FORMATS, default="text")
    output.add_argument("--output-file", "-o", type=Path, metavar="PATH")
    output.add_argument("--statistics", action="store_true", help="count findings per rule")
    output.add_argument("--strict-noqa", action="store_true", default=None)
    output.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    fixes = parser.add_argument_group("fixes")
    fixes.add_argument("--fix", action="store_true", help="apply safe fixes")
    fixes.add_argument("--unsafe-fixes", action="store_true", help="also apply unsafe fixes")
    fixes.add_argument("--diff", action="store_true", help="print fixes as a diff, write nothing")
    run = parser.add_argument_group("execution")
    run.add_argument("--jobs", "-j", type=int, metavar="N", help="processes (default: all cores)")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    _add_config_options(parser)
    parser.set_defaults(func=command_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qig-guard",
        description="Guards for basin-transfer practice: lint code, validate basin files.",
    )
    parser.add_argument("--version", action="version", version=f"qig-guard {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _check_parser(subparsers)
    rules = subparsers.add_parser("rules", help="list the rules")
    rules.add_argument("--format", choices=("text", "json"), default="text")
    rules.set_defaults(func=command_rules)
    explain = subparsers.add_parser("explain", help="print a rule's documentation")
    explain.add_argument("code", type=str.upper, metavar="CODE")
    explain.set_defaults(func=command_explain)
    from qig_guard.server import DEBOUNCE_MS

    server = subparsers.add_parser(
        "server",
        help="run the language server (LSP over stdio) for editors",
        description="Speak the Language Server Protocol over stdin and stdout: diagnostics, "
        "fixes and rule pages in the editor. Needs `pip install 'qig-guard[server]'`.",
    )
    server.add_argument(
        "--debounce-ms",
        type=int,
        default=DEBOUNCE_MS,
        metavar="MS",
        help="check an edited buffer once it has been quiet this long (default: %(default)s)",
    )
    server.set_defaults(func=command_server)
    try:
        from qig_guard.basin.cli import register
    except ImportError:  # pragma: no cover - the basin package ships with qig-guard
        pass
    else:
        register(subparsers)
    return parser


def command_check(args: argparse.Namespace) -> int:
    from qig_guard import runner
    from qig_guard.report import render
    from qig_guard.rule_info import check_rule_info

    config = load_config(args)
    select = args.select if args.select is not None else config.select
    ignore = args.ignore if args.ignore is not None else config.ignore
    config = with_overrides(
        config,
        select=tuple(select) + tuple(args.extend_select),
        ignore=tuple(ignore) + tuple(args.extend_ignore),
        exclude=args.exclude,
        extend_exclude=(*config.extend_exclude, *args.extend_exclude),
        max_file_size=args.max_file_size,
        strict_noqa=args.strict_noqa,
    )
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.max_file_size is not None and args.max_file_size < 1:
        raise UsageError("--max-file-size must be positive")
    paths = args.paths or [Path(".")]
    for path in paths:
        if not path.exists():
            raise UsageError(f"no such file or directory: {path}")
    result = runner.run(paths, config, jobs=args.jobs, use_cache=not args.no_cache)
    findings = result.findings
    if args.fix or args.diff:
        from qig_guard.apply_fixes import apply_fixes

        outcome = apply_fixes(result, config, unsafe=args.unsafe_fixes, write=not args.diff)
        if args.diff:
            sys.stdout.write(outcome.diff)
            return EXIT_FINDINGS if outcome.diff else EXIT_CLEAN
        findings = outcome.findings
        if outcome.fixed:
            print(f"qig-guard: fixed {outcome.fixed} finding(s)", file=sys.stderr)
    # Rule metadata imports every rule (and libcst): only the formats that show it pay.
    needs_rules = args.format in ("sarif", "github") or args.statistics
    text = render(
        findings,
        args.format,
        check_rule_info() if needs_rules else {},
        files_checked=result.stats.files,
        statistics=args.statistics,
    )
    if args.output_file:
        args.output_file.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if args.statistics:
        stats = result.stats
        print(
            f"files: {stats.files} ({stats.lines} lines); from cache: {stats.cached_files} "
            f"({stats.cached_lines} lines); parsed: {stats.parsed_files} ({stats.parsed_lines} "
            f"lines); skipped by triggers: "
            f"{stats.files - stats.cached_files - stats.parsed_files} files",
            file=sys.stderr,
        )
    if args.format == "text" and findings and not args.output_file:
        fixable = sum(1 for f in findings if f.fix is not None and f.fix.safe)
        hint = f" ({fixable} fixable with --fix)" if fixable else ""
        print(f"Found {len(findings)} finding(s){hint}.", file=sys.stderr)
    if result.internal_error:
        return EXIT_ERROR
    return EXIT_FINDINGS if findings and not args.exit_zero else EXIT_CLEAN


def command_rules(args: argparse.Namespace) -> int:
    import json

    from qig_guard.rule_info import rule_table

    table = rule_table()
    if args.format == "json":
        print(json.dumps(table, indent=2))
    else:
        for row in table:
            print(f"{row['code']}  {row['name']:<26} {row['fix']:<11} {row['summary']}")
    return EXIT_CLEAN


def command_explain(args: argparse.Namespace) -> int:
    from qig_guard.rule_info import explain

    text = explain(args.code)
    if text is None:
        raise UsageError(f"unknown rule code {args.code}; `qig-guard rules` lists them")
    sys.stdout.write(text)
    return EXIT_CLEAN


def command_server(args: argparse.Namespace) -> int:
    if args.debounce_ms < 0:
        raise UsageError("--debounce-ms must not be negative")
    try:
        from qig_guard.server.app import serve
    except ImportError as error:
        if (error.name or "").split(".")[0] not in ("pygls", "lsprotocol"):
            raise
        raise UsageError(
            "`qig-guard server` needs pygls: pip install 'qig-guard[server]'"
        ) from None
    serve(args.debounce_ms / 1000)
    return EXIT_CLEAN


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as error:
        print(f"qig-guard: configuration error: {error}", file=sys.stderr)
    except UsageError as error:
        print(f"qig-guard: error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("qig-guard: interrupted", file=sys.stderr)
    except BrokenPipeError:
        return EXIT_CLEAN
    return EXIT_ERROR
