"""Check one file's bytes: decode, filter rules by trigger, parse, visit, suppress.

This is the unit of work that the runner caches and runs in parallel. It
never imports or executes the code it checks.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qig_guard import noqa
from qig_guard.config import Config
from qig_guard.findings import Finding
from qig_guard.source import SourceError, decode

if TYPE_CHECKING:
    from collections.abc import Callable

    import libcst as cst

    from qig_guard.rules.base import Rule

FILE_ERROR = "QIG000"


@dataclass
class FileResult:
    """Findings for one file; ``internal_error`` is set when a rule crashed."""

    findings: list[Finding] = field(default_factory=list)
    internal_error: bool = False
    parsed: bool = False


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
    parse: Callable[[str], cst.Module] | None = None,
) -> FileResult:
    """Run ``rules`` over ``data`` (the bytes of the file at ``path``); ``parse``
    replaces ``libcst.parse_module`` (the language server reuses unchanged parts)."""
    try:
        source, _ = decode(data, config.max_file_size)
    except SourceError as error:
        return FileResult([_file_error(path, str(error), error.line, error.column)])
    candidates = [rule for rule in rules if rule.could_match(source, config)]
    if not any(rule.code != FILE_ERROR for rule in candidates):
        if [rule.code for rule in rules] != [FILE_ERROR]:
            return FileResult()  # no rule could fire: not even parsed
        candidates = []  # QIG000 alone selected: parse every file for its syntax
    return check_text(path, source, config, candidates, parse)


def check_text(
    path: str,
    source: str,
    config: Config,
    rules: list[type[Rule]],
    parse: Callable[[str], cst.Module] | None = None,
) -> FileResult:
    """Parse ``source`` and run ``rules`` over it (no trigger filtering)."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper

    from qig_guard.resolve import ScopeTracker
    from qig_guard.rules.base import FileContext
    from qig_guard.walk import walk_batched

    result = FileResult(parsed=True)
    try:
        module = (parse or cst.parse_module)(source)
    except cst.ParserSyntaxError as error:
        result.findings.append(_syntax_error(path, source, error))
        return result
    except (RecursionError, MemoryError, ValueError) as error:
        result.findings.append(_file_error(path, f"cannot parse, not checked: {error!r}"))
        return result
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    scopes = ScopeTracker()
    context = FileContext(path, source, wrapper, config, scopes)
    instances = [rule(context) for rule in rules]
    try:
        walk_batched(wrapper, [scopes, *instances])
    except RecursionError:
        result.findings.append(_file_error(path, "file nests too deeply to check"))
        return result
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
    result.findings.extend(noqa.apply(context.findings, source, config.strict_noqa))
    result.findings.sort(key=lambda finding: finding.sort_key)
    return result
