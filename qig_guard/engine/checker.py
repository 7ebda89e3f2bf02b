"""Check one file's bytes: decode, filter rules by trigger, parse, visit, suppress.

This is the unit of work that the runner caches and runs in parallel. It
never imports or executes the code it checks.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from qig_guard.config import Config
from qig_guard.engine import left_for_exit, noqa
from qig_guard.engine.findings import FILE_ERROR, Finding
from qig_guard.engine.source import SourceError, decode
from qig_guard.facts import kept_trees

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import libcst as cst

    from qig_guard.engine.parsing import Parsed
    from qig_guard.engine.slicing import Slice
    from qig_guard.facts.project import ProjectFacts
    from qig_guard.rules.base import Rule


@dataclass
class FileResult:
    """Findings for one file; ``internal_error`` is set when a rule crashed."""

    findings: list[Finding] = field(default_factory=list)
    internal_error: bool = False
    parsed: bool = False
    parsed_lines: int = 0  # of the file's lines, those handed to libcst
    # Seconds each rule spent in the traversal, under ``config.time_rules`` (not cached).
    rule_seconds: dict[str, float] = field(default_factory=dict)
    # Other files the rules read, by path, with their modification time (ns) and size
    # when they were read: the cache keeps a result only while they are unchanged.
    read_files: dict[str, tuple[int, int]] = field(default_factory=dict)


def _file_error(path: str, message: str, line: int = 1, column: int = 1) -> Finding:
    return Finding(path=path, line=line, column=column, code=FILE_ERROR, message=message)


def _syntax_error(path: str, source: str, error: Exception) -> Finding:
    """Describe a parse failure with CPython's message and place when it has one."""
    import ast

    try:
        ast.parse(source)
    except SyntaxError as syntax:
        message = f"syntax error, not checked: {syntax.msg}"
        return _file_error(path, message, syntax.lineno or 1, syntax.offset or 1)
    except (RecursionError, MemoryError, ValueError):
        pass
    detail = str(getattr(error, "message", error))
    return _file_error(path, f"libcst cannot parse this file, not checked: {detail}")


def check_source(
    path: str,
    data: bytes,
    config: Config,
    rules: list[type[Rule]],
    project: ProjectFacts | None = None,
    parse_module: Callable[[str], cst.Module] | None = None,
) -> FileResult:
    """Run ``rules`` over ``data`` (the bytes of the file at ``path``); ``project`` is
    the run's index (by default, this file's own); ``parse_module`` replaces
    ``libcst.parse_module`` (the language server reuses unchanged parts).

    Only the rules whose gate holds somewhere in the file run, and only over the units
    some gate selects (see :mod:`qig_guard.engine.gating`); ``QIG_GUARD_PLAIN=1`` in the
    environment turns this off, to show that it changes no finding."""
    try:
        source, encoding = decode(data, config.max_file_size)
    except SourceError as error:
        return FileResult([_file_error(path, str(error), error.line, error.column)])
    # A tree the index kept in this worker, parsed from ``data``: the same as of
    # ``source`` when the file is plain UTF-8 (else the decoding may move columns).
    tree = kept_trees.take(data)
    if encoding != "utf-8":
        tree = None
    if project is None:
        project = own_index(source, config)
    if os.environ.get("QIG_GUARD_PLAIN"):
        plain = [rule for rule in rules if rule.code != FILE_ERROR]
        return check_text(path, source, config, plain, project, parse_module)
    from qig_guard.engine.gating import select

    selection = select(
        path, source, config, rules, project, whole=parse_module is not None, tree=tree
    )
    if not selection.rules:
        if [rule.code for rule in rules] != [FILE_ERROR]:
            return FileResult()  # no rule could fire: not even parsed
        return check_text(path, source, config, [], project, parse_module)
    return check_text(
        path, source, config, selection.rules, project, parse_module, selection.sliced
    )


def _regions(parsed: Parsed, sliced: Slice | None) -> dict[int, frozenset[str]] | None:
    """Which rules visit each definition (see slicing.regions); ``None``: all, everywhere."""
    if sliced is None or parsed.tree is None:
        return None
    from qig_guard.engine.slicing import regions

    try:
        return regions(parsed.module, parsed.tree, sliced.rules_at)
    except ValueError:  # the two trees do not pair up: let every rule read everything
        return None


def file_stamps(paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``{path: (mtime_ns, size)}`` of the files that exist among ``paths``."""
    stamps = {}
    for path in sorted(paths):
        try:
            info = os.stat(path)
        except OSError:
            continue
        stamps[path] = (info.st_mtime_ns, info.st_size)
    return stamps


def own_index(source: str, config: Config) -> ProjectFacts:
    """The project index of a file checked on its own."""
    from qig_guard.facts.project import ProjectFacts, file_facts, index_words

    data = source.encode("utf-8", "surrogatepass")
    return ProjectFacts.merge([file_facts(data, index_words(config))])


def check_text(
    path: str,
    source: str,
    config: Config,
    rules: list[type[Rule]],
    project: ProjectFacts | None = None,
    parse_module: Callable[[str], cst.Module] | None = None,
    sliced: Slice | None = None,
) -> FileResult:
    """Parse ``source`` (or, given ``sliced``, its kept units) and run ``rules`` over it
    (no gates)."""
    from qig_guard.engine.parsing import with_deep_stack

    return with_deep_stack(
        lambda: _check_text(path, source, config, rules, project, parse_module, sliced)
    )


def _check_text(
    path: str,
    source: str,
    config: Config,
    rules: list[type[Rule]],
    project: ProjectFacts | None,
    parse_module: Callable[[str], cst.Module] | None,
    sliced: Slice | None,
) -> FileResult:
    import libcst as cst
    from libcst.metadata import MetadataWrapper

    from qig_guard.engine.parsing import ParseRefused, parse
    from qig_guard.engine.resolve import ScopeTracker
    from qig_guard.engine.traversal import walk_batched
    from qig_guard.rules.base import FileContext

    text = sliced.text if sliced is not None else source
    result = FileResult(
        parsed=True, parsed_lines=sliced.kept_lines if sliced else source.count("\n")
    )
    try:
        parsed = parse(text, parse_module, sliced.tree if sliced is not None else None)
    except ParseRefused as error:
        result.findings.append(_file_error(path, str(error), error.line, error.column))
        return result
    except cst.ParserSyntaxError as error:
        if sliced is not None:  # never the cut's fault: parse the whole file instead
            return _check_text(path, source, config, rules, project, parse_module, None)
        result.findings.append(_syntax_error(path, source, error))
        return result
    except (RecursionError, MemoryError, ValueError) as error:
        result.findings.append(_file_error(path, f"libcst cannot parse, not checked: {error!r}"))
        return result
    wrapper = MetadataWrapper(parsed.module, unsafe_skip_copy=True)
    scopes = ScopeTracker(sliced.hidden if sliced is not None else None)
    if project is None:
        project = own_index(source, config)
    context = FileContext(path, source, wrapper, config, scopes, project, parsed.tree)
    instances = [rule(context) for rule in rules]
    try:
        walk_batched(wrapper, [scopes, *instances], _regions(parsed, sliced))
    except RecursionError as error:
        where = traceback.extract_tb(error.__traceback__)[-1]
        result.findings.append(
            _file_error(
                path,
                "nests too deeply for libcst's metadata (RecursionError at "
                f"{where.filename.rsplit('/', 1)[-1]}:{where.lineno}); not checked",
            )
        )
        return result
    if config.time_rules:
        result.rule_seconds = {instance.code: instance.seconds for instance in instances}
    for instance in instances:
        if instance.error is not None:
            result.internal_error = True
            where = traceback.extract_tb(instance.error.__traceback__)[-1]
            result.findings.append(
                _file_error(
                    path,
                    f"internal error in {instance.code} ({type(instance.error).__name__}: "
                    f"{instance.error} at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}); "
                    "other rules' findings are kept; please report this",
                )
            )
    result.read_files = file_stamps(context.read_files)
    findings = noqa.apply(context.findings, source, config.strict_noqa)
    if parsed.rewritten:  # fixes were located in the rewritten text: offer none
        findings = [replace(finding, fix=None) for finding in findings]
    result.findings.extend(findings)
    left_for_exit.leave((wrapper, instances))
    return result
