"""Rendering findings: text, JSON, SARIF 2.1.0 and GitHub workflow annotations.

The same renderers serve ``qig-guard check`` and ``qig-guard basin validate``;
each caller supplies :class:`RuleInfo` for the codes it can report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from qig_guard import __version__
from qig_guard.findings import Finding

FORMATS = ("text", "json", "sarif", "github")
JSON_SCHEMA_VERSION = 1
INFORMATION_URI = "https://github.com/qig-guard/qig-guard"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class RuleInfo:
    """What a report says about a code: its name, summary and documentation."""

    code: str
    name: str
    summary: str
    documentation: str = ""
    docs_path: str = ""


def render(
    findings: Sequence[Finding],
    fmt: str,
    rules: Mapping[str, RuleInfo],
    *,
    files_checked: int,
    statistics: bool = False,
) -> str:
    """The report for ``findings`` in format ``fmt`` (one of :data:`FORMATS`)."""
    ordered = sorted(findings, key=lambda finding: finding.sort_key)
    if fmt == "text":
        text = "".join(f"{line}\n" for line in map(text_line, ordered))
        return text + (render_statistics(ordered, rules) if statistics else "")
    if fmt == "json":
        return json.dumps(json_report(ordered, files_checked), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif_report(ordered, rules), indent=2) + "\n"
    if fmt == "github":
        text = "".join(f"{github_line(finding, rules)}\n" for finding in ordered)
        return text + (render_statistics(ordered, rules) if statistics else "")
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def text_line(finding: Finding) -> str:
    return f"{finding.path}:{finding.line}:{finding.column}: {finding.code} {finding.message}"


def render_statistics(findings: Sequence[Finding], rules: Mapping[str, RuleInfo]) -> str:
    counts = Counter(finding.code for finding in findings)
    lines = [
        f"{count:>5}  {code}  {rules[code].name if code in rules else ''}".rstrip()
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    lines.append(f"{sum(counts.values()):>5}  total")
    return "\n".join(lines) + "\n"


def json_report(findings: Sequence[Finding], files_checked: int) -> dict[str, Any]:
    """The ``--format json`` document; its schema is documented in the README."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": "qig-guard", "version": __version__},
        "summary": {
            "files_checked": files_checked,
            "findings": len(findings),
            "by_code": dict(sorted(Counter(f.code for f in findings).items())),
        },
        "findings": [finding.to_dict() for finding in findings],
    }


def _uri(path: str) -> str:
    return PurePath(path).as_posix()


def _region(line: int, column: int, end_line: int | None, end_column: int | None) -> dict[str, int]:
    region = {"startLine": line, "startColumn": column}
    if end_line is not None and end_column is not None:
        region.update(endLine=end_line, endColumn=end_column)
    return region


def _sarif_rule(info: RuleInfo) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": info.code,
        "name": info.name,
        "shortDescription": {"text": info.summary},
        "defaultConfiguration": {"level": "error"},
    }
    if info.documentation:
        rule["fullDescription"] = {"text": info.summary}
        rule["help"] = {"text": info.documentation, "markdown": info.documentation}
    if info.docs_path:
        rule["helpUri"] = f"{INFORMATION_URI}/blob/main/{info.docs_path}"
    return rule


def _sarif_fix(finding: Finding) -> dict[str, Any]:
    assert finding.fix is not None
    return {
        "description": {
            "text": finding.fix.description + ("" if finding.fix.safe else " (unsafe fix)")
        },
        "artifactChanges": [
            {
                "artifactLocation": {"uri": _uri(finding.path), "uriBaseId": "%SRCROOT%"},
                "replacements": [
                    {
                        "deletedRegion": _region(
                            edit.line, edit.column, edit.end_line, edit.end_column
                        ),
                        "insertedContent": {"text": edit.content},
                    }
                    for edit in finding.fix.edits
                ],
            }
        ],
    }


def sarif_report(findings: Sequence[Finding], rules: Mapping[str, RuleInfo]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run, rule metadata and fixes."""
    codes = sorted(set(rules) | {finding.code for finding in findings})
    index = {code: position for position, code in enumerate(codes)}
    results = []
    for finding in findings:
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": "error",
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(finding.path), "uriBaseId": "%SRCROOT%"},
                        "region": _region(
                            finding.line, finding.column, finding.end_line, finding.end_column
                        ),
                    }
                }
            ],
        }
        if finding.fix is not None:
            result["fixes"] = [_sarif_fix(finding)]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "qig-guard",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [
                            _sarif_rule(rules.get(code, RuleInfo(code, code.lower(), code)))
                            for code in codes
                        ],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(finding: Finding, rules: Mapping[str, RuleInfo]) -> str:
    """A GitHub Actions ``::error`` workflow command for ``finding``."""
    name = rules[finding.code].name if finding.code in rules else ""
    properties = {
        "file": finding.path,
        "line": str(finding.line),
        "col": str(finding.column),
        "title": f"{finding.code} {name}".strip(),
    }
    if finding.end_line is not None and finding.end_column is not None:
        properties["endLine"] = str(finding.end_line)
        properties["endColumn"] = str(finding.end_column)
    joined = ",".join(f"{key}={_escape_property(value)}" for key, value in properties.items())
    return f"::error {joined}::{_escape_data(f'{finding.code} {finding.message}')}"
