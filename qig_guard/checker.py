"""Check one file's bytes: decode, filter rules by trigger, parse, visit, suppress.

This is the unit of work that the runner caches and runs in parallel. It
never imports or executes the code it checks.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qig_guard import noqa
from qig_guard.config import Config
from qig_guard.findings import Finding
from qig_guard.source import SourceError, decode

if TYPE_CHECKING:
    from qig_guard.rules.base import Rule

FILE_ERROR = "QIG000"
_PARSER_LOCATION = re.compile(r"(?:parser error: )?error at (\d+):(\d+): ")


@dataclass
class FileResult:
    """Findings for one file; ``internal_error`` is set when a rule crashed."""

    findings: list[Finding] = field(default_factory=list)
    internal_error: bool = False
    parsed: bool = False


def _file_error(path: str, message: str, line: int = 1, column: int = 1) -> Finding:
    return Finding(path=path, line=line, column=column, code=FILE_ERROR, message=message)


def check_source(path: str, data: bytes, config: Config, rules: list[type[Rule]]) -> FileResult:
    """Run ``rules`` over ``data`` (the bytes of the file at ``path``)."""
    try:
        source, _ = decode(data, config.max_file_size)
    except SourceError as error:
        return FileResult([_file_error(path, str(error), error.line, error.column)])
    candidates = [rule for rule in rules if rule.could_match(source, config)]
    if not any(rule.code != FILE_ERROR for rule in candidates):
        if [rule.code for rule in rules] != [FILE_ERROR]:
            return FileResult()  # no rule could fire: not even parsed
        candidates = []  # QIG000 alone selected: parse every file for its syntax
    return check_text(path, source, config, candidates)


def check_text(path: str, source: str, config: Config, rules: list[type[Rule]]) -> FileResult:
    """Parse ``source`` and run ``rules`` over it (no trigger filtering)."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper

    from qig_guard.resolve import ScopeTracker
    from qig_guard.rules.base import FileContext

    result = FileResult(parsed=True)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        line, column = error.editor_line, error.editor_column
        detail = error.message
        located = _PARSER_LOCATION.match(detail)
        if located:  # the native parser puts the precise place in the message
            line, column = int(located.group(1)), int(located.group(2)) + 1
            detail = detail[located.end() :]
        message = f"syntax error, not checked: {detail}"
        result.findings.append(_file_error(path, message, line, column))
        return result
    except (RecursionError, MemoryError, ValueError) as error:
        result.findings.append(_file_error(path, f"cannot parse, not checked: {error!r}"))
        return result
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    scopes = ScopeTracker()
    context = FileContext(path, source, wrapper, config, scopes)
    instances = [rule(context) for rule in rules]
    try:
        wrapper.visit_batched([scopes, *instances])
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
