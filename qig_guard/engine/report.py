"""Rendering findings: text, JSON, SARIF 2.1.0 and GitHub workflow annotations.

The same renderers serve ``qig-guard check`` and ``qig-guard basin validate``;
each caller supplies :class:`RuleInfo` for the codes it can report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from qig_guard import __version__
from qig_guard.engine.baseline import SourceOf, fingerprints, read_source
from qig_guard.engine.discovery import normalise
from qig_guard.engine.findings import Finding

FORMATS = ("text", "json", "sarif", "github")
JSON_SCHEMA_VERSION = 1
INFORMATION_URI = "https://github.com/qig-guard/qig-guard"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
RULES_DOC = "docs/rules.md"
CHECK_AUTOMATION = "qig-guard/check/"
FINGERPRINT_KEY = "qigGuardFindingHash/v1"


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
    automation_id: str = CHECK_AUTOMATION,
    source_of: SourceOf = read_source,
) -> str:
    """The report for ``findings`` (in the order given) in format ``fmt`` (see :data:`FORMATS`).

    With ``statistics`` the text and GitHub formats print only the counts per rule.
    ``automation_id`` names the SARIF run's category (``check`` or ``basin``);
    ``source_of`` reads the flagged source for SARIF fingerprints.
    """
    if fmt in ("text", "github") and statistics:
        return render_statistics(findings, rules)
    if fmt == "text":
        return "".join(f"{line}\n" for line in map(text_line, findings))
    if fmt == "json":
        return json.dumps(json_report(findings, files_checked), indent=2) + "\n"
    if fmt == "sarif":
        document = sarif_report(findings, rules, automation_id=automation_id, source_of=source_of)
        return json.dumps(document, indent=2) + "\n"
    if fmt == "github":
        return "".join(f"{github_line(finding, rules)}\n" for finding in findings)
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


def repository_root(start: Path | None = None) -> Path:
    """The nearest folder with ``.git`` from ``start`` (the cwd) up, else ``start``."""
    here = normalise(start or Path.cwd())
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return here


def _location(path: str, root: Path) -> dict[str, str]:
    """A SARIF artifact location: percent-encoded, relative to ``%SRCROOT%`` when
    the file is inside the repository, else an absolute ``file:`` URI."""
    absolute = normalise(Path(path))
    try:
        relative = absolute.relative_to(root).as_posix()
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(relative, safe="/"), "uriBaseId": "%SRCROOT%"}


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
    rule["helpUri"] = f"{INFORMATION_URI}/blob/main/{info.docs_path or RULES_DOC}"
    return rule


def _sarif_fix(finding: Finding, root: Path) -> dict[str, Any]:
    assert finding.fix is not None
    return {
        "description": {
            "text": finding.fix.description + ("" if finding.fix.safe else " (unsafe fix)")
        },
        "artifactChanges": [
            {
                "artifactLocation": _location(finding.path, root),
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


def sarif_report(
    findings: Sequence[Finding],
    rules: Mapping[str, RuleInfo],
    *,
    automation_id: str = CHECK_AUTOMATION,
    source_of: SourceOf = read_source,
    root: Path | None = None,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: rule metadata, results with fingerprints of
    the flagged source (so alerts survive line moves) and fixes. Paths are relative
    to ``root`` (default: the repository root), named ``%SRCROOT%``."""
    root = normalise(root) if root else repository_root()
    codes = sorted(set(rules) | {finding.code for finding in findings})
    index = {code: position for position, code in enumerate(codes)}
    results = []
    occurrences: Counter[tuple[str, str]] = Counter()
    for finding, digest in zip(findings, fingerprints(findings, source_of), strict=True):
        occurrences[(finding.path, digest)] += 1
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": "error",
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _location(finding.path, root),
                        "region": _region(
                            finding.line, finding.column, finding.end_line, finding.end_column
                        ),
                    }
                }
            ],
            "partialFingerprints": {
                FINGERPRINT_KEY: f"{digest}:{occurrences[(finding.path, digest)]}"
            },
        }
        if finding.fix is not None:
            result["fixes"] = [_sarif_fix(finding, root)]
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
                "automationDetails": {"id": automation_id},
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root.as_uri().rstrip("/") + "/"}},
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
