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
from typing import TYPE_CHECKING

from qig_guard import __version__
from qig_guard.config import (
    Config,
    ConfigError,
    ConfigResolver,
    load_pyproject,
    selector_problem,
    with_overrides,
)
from qig_guard.engine.baseline import BaselineError
from qig_guard.engine.report import FORMATS

if TYPE_CHECKING:
    from qig_guard.engine.baseline import SourceOf
    from qig_guard.engine.findings import Finding
    from qig_guard.engine.results import RunResult

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input; reported with exit code 2."""


def _codes(value: str) -> tuple[str, ...]:
    codes = tuple(code.strip().upper() for code in value.split(",") if code.strip())
    for code in codes:
        problem = selector_problem(code)
        if problem:
            raise argparse.ArgumentTypeError(problem)
    return codes


def _globs(value: str) -> tuple[str, ...]:
    return tuple(glob.strip() for glob in value.split(",") if glob.strip())


def config_resolver(args: argparse.Namespace) -> ConfigResolver:
    """Each file's configuration (``--config``, ``--isolated`` or its nearest
    configuration file) with the command line's options applied."""
    from qig_guard.rules import select_codes

    def adjust(config: Config) -> Config:
        select = args.select if args.select is not None else config.select
        ignore = args.ignore if args.ignore is not None else config.ignore
        adjusted = with_overrides(
            config,
            select=(*select, *args.extend_select),
            ignore=(*ignore, *args.extend_ignore),
            exclude=args.exclude,
            extend_exclude=(*config.extend_exclude, *args.extend_exclude),
            max_file_size=args.max_file_size,
            strict_noqa=args.strict_noqa,
            preview=args.preview,
            time_rules=args.statistics or None,
        )
        if not select_codes(adjusted.select, adjusted.ignore, adjusted.preview):
            where = "--select" if args.select is not None else f"{config.source or 'defaults'}"
            raise ConfigError(
                where,
                f"no rule selected (select {list(adjusted.select)}, ignore "
                f"{list(adjusted.ignore)}); use ALL for every rule",
            )
        return adjusted

    if args.isolated:
        return ConfigResolver(adjust, isolated=True)
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError("--config", f"no such file: {path}")
        return ConfigResolver(adjust, fixed=load_pyproject(path))
    return ConfigResolver(adjust)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", metavar="PATH", help="pyproject.toml to read (default: nearest)")
    group.add_argument("--isolated", action="store_true", help="ignore configuration files")


def add_output_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The report options that ``check`` and ``basin validate`` share."""
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output-format",
        "--format",
        dest="format",
        choices=FORMATS,
        default="text",
        help="report format (default: text)",
    )
    output.add_argument(
        "--output-file",
        "--output",
        "-o",
        dest="output_file",
        type=Path,
        metavar="PATH",
        help="write the report to this file",
    )
    output.add_argument("--statistics", action="store_true", help="print only counts per rule")
    output.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    output.add_argument("--quiet", "-q", action="store_true", help="print findings, no summary")
    output.add_argument(
        "--silent", "-s", action="store_true", help="print nothing; the exit code tells"
    )
    return output


def _check_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check Python files for basin-transfer violations",
        description="Check Python files and report `path:line:col: CODE message`.",
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, help="files or directories (default: .; - reads stdin)"
    )
    rules = parser.add_argument_group("rule selection")
    rules.add_argument("--select", type=_codes, metavar="CODES", help="comma-separated codes")
    rules.add_argument("--ignore", type=_codes, metavar="CODES", help="comma-separated codes")
    rules.add_argument("--extend-select", type=_codes, metavar="CODES", default=())
    rules.add_argument("--extend-ignore", type=_codes, metavar="CODES", default=())
    rules.add_argument(
        "--preview",
        action="store_true",
        default=None,
        help="let ALL and prefixes select preview rules too",
    )
    files = parser.add_argument_group("files")
    files.add_argument("--exclude", type=_globs, metavar="GLOBS", help="replace exclude globs")
    files.add_argument("--extend-exclude", type=_globs, metavar="GLOBS", default=())
    files.add_argument("--max-file-size", type=int, metavar="BYTES")
    files.add_argument(
        "--stdin-filename", metavar="PATH", help="the path of the code read from stdin (-)"
    )
    output = add_output_options(parser)
    output.add_argument("--strict-noqa", action="store_true", default=None)
    fixes = parser.add_argument_group("fixes")
    fixes.add_argument("--fix", action="store_true", help="apply safe fixes")
    fixes.add_argument("--unsafe-fixes", action="store_true", help="also apply unsafe fixes")
    fixes.add_argument("--diff", action="store_true", help="print fixes as a diff, write nothing")
    fixes.add_argument("--show-fixes", action="store_true", help="list what --fix fixed")
    adoption = parser.add_argument_group("adoption")
    adoption.add_argument(
        "--add-noqa", action="store_true", help="add `# noqa: CODE` to each reported line"
    )
    adoption.add_argument(
        "--baseline", type=Path, metavar="FILE", help="report only findings not recorded in FILE"
    )
    adoption.add_argument(
        "--update-baseline",
        action="store_true",
        help="record the current findings in the --baseline FILE",
    )
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


def _validate_check_args(args: argparse.Namespace) -> None:
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.max_file_size is not None and args.max_file_size < 1:
        raise UsageError("--max-file-size must be positive")
    if args.update_baseline and args.baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE")
    if args.add_noqa and (args.fix or args.diff or args.update_baseline):
        raise UsageError("--add-noqa cannot be combined with --fix, --diff or --update-baseline")
    stdin = Path("-") in args.paths
    if stdin and len(args.paths) > 1:
        raise UsageError("- (stdin) cannot be combined with other paths")
    if args.stdin_filename and not stdin:
        raise UsageError("--stdin-filename needs - among the paths")
    if stdin and (args.add_noqa or args.diff):
        raise UsageError("--add-noqa and --diff need files, not stdin")


class Console:
    """Messages on stderr, hushed by ``--quiet`` (notes) and ``--silent`` (all)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet = args.quiet or args.silent
        self.silent = args.silent

    def note(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        if not self.silent:
            print(f"qig-guard: warning: {message}", file=sys.stderr)


def command_check(args: argparse.Namespace) -> int:
    from qig_guard.engine import runner
    from qig_guard.engine.baseline import read_source

    _validate_check_args(args)
    console = Console(args)
    resolver = config_resolver(args)
    source_of = read_source
    if args.paths == [Path("-")]:
        result, stdin_text = _check_stdin(args, resolver)
        if stdin_text is None:
            return EXIT_ERROR
        display = next(iter(result.paths), "-")

        def source_of(path: str) -> str | None:
            return stdin_text if path == display else read_source(path)

        if args.fix:
            return _fix_stdin(args, result, stdin_text, console)
    else:
        paths = args.paths or [Path(".")]
        for path in paths:  # configuration errors surface even when no file is checked
            resolver.for_folder(path) if path.is_dir() else resolver.for_path(path)
        result = runner.run(paths, resolver, jobs=args.jobs, use_cache=not args.no_cache)
    for folder in result.empty_folders:
        console.warn(f"{folder}: no Python files to check")
    if args.add_noqa:
        return _add_noqa(result, console)
    findings = result.findings
    fix_failed = False
    if args.fix or args.diff:
        from qig_guard.engine.apply_fixes import apply_fixes

        outcome = apply_fixes(result, Config(), unsafe=args.unsafe_fixes, write=not args.diff)
        if args.diff:
            if not args.silent:
                write_report(outcome.diff, None)
            if outcome.failures or result.internal_error:
                return EXIT_ERROR
            return EXIT_FINDINGS if outcome.diff else EXIT_CLEAN
        if outcome.fixed:
            console.note(f"qig-guard: fixed {outcome.fixed} finding(s)")
            if args.show_fixes and not console.quiet:
                sys.stderr.write(_fixed_listing(findings, outcome.findings))
        findings = outcome.findings
        fix_failed = outcome.failures > 0
    if args.baseline is not None:
        from qig_guard.engine import baseline

        recorded = baseline.load(args.baseline)
        if args.update_baseline:
            count = baseline.update(findings, args.baseline, recorded, result.paths, source_of)
            console.note(f"qig-guard: recorded {count} finding(s) in {args.baseline}")
            return EXIT_ERROR if result.internal_error else EXIT_CLEAN
        filtered = baseline.apply(findings, args.baseline, recorded, result.paths, source_of)
        findings = filtered.new
        if filtered.known:
            console.note(f"qig-guard: {filtered.known} finding(s) in the baseline not shown")
        if filtered.stale:
            console.note(
                f"qig-guard: {filtered.stale} baseline entries no longer match; "
                "--update-baseline drops them"
            )
    _report(args, result, findings, source_of, console)
    if result.internal_error or fix_failed:
        return EXIT_ERROR
    return EXIT_FINDINGS if findings and not args.exit_zero else EXIT_CLEAN


def _report(
    args: argparse.Namespace,
    result: RunResult,
    findings: list[Finding],
    source_of: SourceOf,
    console: Console,
) -> None:
    from qig_guard.engine.report import render
    from qig_guard.engine.rule_catalog import check_rule_info

    # Rule metadata imports every rule (and libcst): only the formats that show it pay.
    needs_rules = args.format in ("sarif", "github") or args.statistics
    text = render(
        findings,
        args.format,
        check_rule_info() if needs_rules else {},
        files_checked=result.stats.files,
        statistics=args.statistics,
        source_of=source_of,
    )
    if args.output_file or not args.silent:
        write_report(text, args.output_file)
    if args.statistics:
        stats = result.stats
        console.note(
            f"files: {stats.files} ({stats.lines} lines); from cache: {stats.cached_files} "
            f"({stats.cached_lines} lines); parsed: {stats.parsed_files} "
            f"({stats.parsed_lines} of their lines); skipped by gates: "
            f"{stats.files - stats.cached_files - stats.parsed_files} files"
        )
        console.note(_rule_times(result))
    if args.format == "text" and findings and not args.output_file and not args.statistics:
        console.note(_summary(findings, unsafe=args.unsafe_fixes))


def _rule_times(result: RunResult) -> str:
    """Each selected rule's time in the traversal of the files parsed in this run
    (files read from the cache cost none), slowest first."""
    from qig_guard.engine.rule_catalog import check_rule_info
    from qig_guard.engine.selection import selected_codes

    codes = {code for config in result.configs.values() for code in selected_codes(config)}
    seconds = {code: result.stats.rule_seconds.get(code, 0.0) for code in codes}
    info = check_rule_info()
    lines = [f"time in rules (s) over the {result.stats.parsed_files} file(s) parsed:"]
    lines += [
        f"{time:>9.4f}  {code}  {info[code].name}"
        for code, time in sorted(seconds.items(), key=lambda item: (-item[1], item[0]))
    ]
    return "\n".join(lines)


def _summary(findings: Sequence[Finding], *, unsafe: bool) -> str:
    """Ruff's closing lines: how many findings, how many ``--fix`` would fix."""
    with_fix = [finding.fix for finding in findings if finding.fix is not None]
    fixable = sum(1 for fix in with_fix if fix.safe or unsafe)
    hidden = len(with_fix) - fixable
    lines = [f"Found {len(findings)} finding(s)."]
    hint = (
        f" ({hidden} hidden fixes can be enabled with the `--unsafe-fixes` option)"
        if hidden
        else ""
    )
    if fixable:
        lines.append(f"{fixable} fixable with --fix{hint}.")
    elif hidden:
        lines.append(f"No fixes available{hint}.")
    return "\n".join(lines)


def _fixed_listing(before: Sequence[Finding], after: Sequence[Finding]) -> str:
    """``--show-fixes``: what ``--fix`` fixed, per file and rule, as Ruff lists it."""
    from collections import Counter

    from qig_guard.engine.rule_catalog import check_rule_info

    fixed = Counter((f.path, f.code) for f in before) - Counter((f.path, f.code) for f in after)
    names = check_rule_info()
    lines = [f"Fixed {sum(fixed.values())} finding(s):"]
    for path in sorted({path for path, _ in fixed}):
        lines.append(f"- {path}:")
        for (where, code), count in sorted(fixed.items()):
            if where == path:
                name = names[code].name if code in names else ""
                lines.append(f"    {count} x {code} ({name})")
    return "\n".join(lines) + "\n"


def _add_noqa(result: RunResult, console: Console) -> int:
    """``--add-noqa``: suppress every reported finding where it is reported."""
    from qig_guard.engine.findings import FILE_ERROR
    from qig_guard.engine.fixer import write_atomic
    from qig_guard.engine.noqa import add_directives
    from qig_guard.engine.source import SourceError, decode

    by_file: dict[str, dict[int, set[str]]] = {}
    for finding in result.findings:
        if finding.code != FILE_ERROR and finding.path in result.paths:
            by_file.setdefault(finding.path, {}).setdefault(finding.line, set()).add(finding.code)
    added = 0
    for display, lines in sorted(by_file.items()):
        path = result.paths[display]
        try:
            source, encoding = decode(path.read_bytes(), result.configs[display].max_file_size)
        except (OSError, SourceError) as error:
            console.warn(f"{display}: not changed: {error}")
            continue
        text, skipped = add_directives(source, lines)
        for line in skipped:
            console.warn(
                f"{display}:{line}: no `# noqa` added: the line is inside a multi-line "
                "string or continued with a backslash"
            )
        if text != source:
            write_atomic(path, text.encode(encoding))
            added += len(lines) - len(skipped)
    console.note(f"Added {added} noqa directive(s).")
    return EXIT_ERROR if result.internal_error else EXIT_CLEAN


def _check_stdin(
    args: argparse.Namespace, resolver: ConfigResolver
) -> tuple[RunResult, str | None]:
    """Check the code on stdin as the file ``--stdin-filename`` (default ``-``)."""
    from qig_guard.engine.checker import check_source
    from qig_guard.engine.discovery import normalise, relative_posix
    from qig_guard.engine.findings import ordered
    from qig_guard.engine.results import RunResult
    from qig_guard.engine.selection import codes_for, selected_codes
    from qig_guard.engine.source import SourceError, decode
    from qig_guard.rules import load_rules

    name = Path(args.stdin_filename or "-")
    config = resolver.for_path(name)
    display = relative_posix(name, Path.cwd()) if args.stdin_filename else "-"
    data = sys.stdin.buffer.read()
    result = RunResult()
    result.stats.files = 1
    result.paths[display] = normalise(name)
    result.configs[display] = config
    selected = selected_codes(config)
    outcome = check_source(display, data, config, load_rules(codes_for(name, config)))
    result.findings = ordered(f for f in outcome.findings if f.code in selected)
    result.internal_error = outcome.internal_error
    result.stats.rule_seconds = dict(outcome.rule_seconds)
    result.stats.parsed_files = int(outcome.parsed)
    try:
        text, _ = decode(data, config.max_file_size)
    except SourceError:
        text = data.decode("utf-8", errors="replace")
    return result, text


def _fix_stdin(args: argparse.Namespace, result: RunResult, source: str, console: Console) -> int:
    """``--fix`` on stdin: the fixed code on stdout, what is left on stderr (as Ruff)."""
    from qig_guard.engine.findings import ordered
    from qig_guard.engine.fixer import applicable, fix_source
    from qig_guard.engine.report import text_line
    from qig_guard.rules import load_rules

    display, config = next(iter(result.configs.items()))
    codes = sorted({f.code for f in result.findings if applicable(f, args.unsafe_fixes)})
    remaining = result.findings
    fixed = source
    if codes:
        outcome = fix_source(display, source, config, load_rules(codes), args.unsafe_fixes)
        if not outcome.refused:
            fixed = outcome.source
            kept = [f for f in result.findings if f.code not in codes]
            remaining = ordered([*kept, *outcome.remaining])
    sys.stdout.write(fixed)
    if not console.silent:
        sys.stderr.write("".join(f"{text_line(f)}\n" for f in remaining))
    return EXIT_FINDINGS if remaining and not args.exit_zero else EXIT_CLEAN


def command_rules(args: argparse.Namespace) -> int:
    import json

    from qig_guard.engine.rule_catalog import rule_table

    table = rule_table()
    if args.format == "json":
        print(json.dumps(table, indent=2))
    else:
        for row in table:
            preview = "(preview) " if row["preview"] == "yes" else ""
            print(f"{row['code']}  {row['name']:<26} {row['fix']:<11} {preview}{row['summary']}")
    return EXIT_CLEAN


def command_explain(args: argparse.Namespace) -> int:
    from qig_guard.engine.rule_catalog import explain

    text = explain(args.code)
    if text is None:
        raise UsageError(f"unknown rule code {args.code}; `qig-guard rules` lists them")
    sys.stdout.write(text)
    return EXIT_CLEAN


def write_report(text: str, output: Path | None) -> None:
    """Write a report to ``output`` or stdout. File names that are not valid UTF-8
    (surrogate escapes) are written back as the bytes they came from."""
    if output is not None:
        with open(output, "w", encoding="utf-8", errors="surrogateescape") as stream:
            stream.write(text)
        return
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        sys.stdout.flush()
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.buffer.write(text.encode(encoding, errors="surrogateescape"))
        sys.stdout.buffer.flush()


def _describe(error: BaseException) -> str:
    """``TypeError: message (at file.py:12)`` for an unexpected exception."""
    import traceback

    where = traceback.extract_tb(error.__traceback__)
    place = f" (at {where[-1].filename.rsplit('/', 1)[-1]}:{where[-1].lineno})" if where else ""
    return f"{type(error).__name__}: {error}{place}"


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
    except (UsageError, BaselineError) as error:
        print(f"qig-guard: error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("qig-guard: interrupted", file=sys.stderr)
    except BrokenPipeError:
        return EXIT_CLEAN
    except OSError as error:
        name = f"{error.filename}: " if error.filename is not None else ""
        print(f"qig-guard: error: {name}{error.strerror or error}", file=sys.stderr)
    except UnicodeError as error:
        print(f"qig-guard: error: {error}", file=sys.stderr)
    except Exception as error:  # any crash exits 2, never 1, and without a traceback
        print(f"qig-guard: internal error: {_describe(error)}; please report this", file=sys.stderr)
    return EXIT_ERROR
