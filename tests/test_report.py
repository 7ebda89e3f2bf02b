"""Report formats: text lines, JSON schema, SARIF 2.1.0 validity, GitHub annotations."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from qig_guard.engine.findings import Edit, Finding, Fix, ordered
from qig_guard.engine.report import RuleInfo, github_line, render

SARIF_SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
RULES = {
    "QIG002": RuleInfo("QIG002", "direct-basin-assignment", "summary", "## What it does\n..."),
    "QIG010": RuleInfo("QIG010", "unsafe-checkpoint-load", "summary"),
}
FINDINGS = [
    Finding(
        "pkg/train.py", 7, 5, "QIG002", "direct assignment", 7, 40,
        Fix("Use set_target_basin", (Edit(7, 5, 7, 40, "m.set_target_basin(b)"),), safe=True),
    ),
    Finding(
        "pkg/load.py", 3, 9, "QIG010", "torch.load without weights_only=True", 3, 30,
        Fix("Add weights_only=True", (Edit(3, 29, 3, 29, ", weights_only=True"),), safe=False),
    ),
    Finding("pkg/bad.py", 1, 1, "QIG000", "syntax error, not checked: invalid syntax"),
]  # fmt: skip


def test_text_is_path_line_col_code_message_in_report_order() -> None:
    text = render(ordered(FINDINGS), "text", RULES, files_checked=3)
    assert text.splitlines() == [
        "pkg/bad.py:1:1: QIG000 syntax error, not checked: invalid syntax",
        "pkg/load.py:3:9: QIG010 torch.load without weights_only=True",
        "pkg/train.py:7:5: QIG002 direct assignment",
    ]
    # The producers order findings once; the reporter prints them as given.
    given = render(FINDINGS, "text", RULES, files_checked=3).splitlines()
    assert [line.split(":")[0] for line in given] == ["pkg/train.py", "pkg/load.py", "pkg/bad.py"]


def test_statistics_count_per_rule() -> None:
    text = render(FINDINGS + FINDINGS[:1], "text", RULES, files_checked=3, statistics=True)
    assert "    2  QIG002  direct-basin-assignment" in text
    assert text.rstrip().endswith("4  total")


def test_json_report_shape_and_round_trip() -> None:
    document = json.loads(render(FINDINGS, "json", RULES, files_checked=3))
    assert document["schema_version"] == 1
    assert document["summary"] == {
        "files_checked": 3,
        "findings": 3,
        "by_code": {"QIG000": 1, "QIG002": 1, "QIG010": 1},
    }
    restored = [Finding.from_dict(item) for item in document["findings"]]
    assert sorted(restored, key=lambda f: f.sort_key) == sorted(FINDINGS, key=lambda f: f.sort_key)
    assert [f.fix for f in restored if f.code == "QIG010"] == [FINDINGS[1].fix]


def test_sarif_validates_against_the_official_schema() -> None:
    document = json.loads(render(FINDINGS, "sarif", RULES, files_checked=3))
    jsonschema.validate(document, SARIF_SCHEMA)
    run = document["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids == ["QIG000", "QIG002", "QIG010"]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    fixed = next(r for r in run["results"] if r["ruleId"] == "QIG002")
    replacement = fixed["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement["insertedContent"]["text"] == "m.set_target_basin(b)"
    assert replacement["deletedRegion"] == {
        "startLine": 7, "startColumn": 5, "endLine": 7, "endColumn": 40
    }  # fmt: skip


def test_sarif_without_findings_is_valid() -> None:
    document = json.loads(render([], "sarif", RULES, files_checked=0))
    jsonschema.validate(document, SARIF_SCHEMA)
    assert document["runs"][0]["results"] == []


def test_github_annotation_escapes_properties_and_data() -> None:
    finding = Finding("a,b:c.py", 2, 3, "QIG002", "50% of it\nnext", 2, 9)
    line = github_line(finding, RULES)
    assert line == (
        "::error file=a%2Cb%3Ac.py,line=2,col=3,title=QIG002 direct-basin-assignment,"
        "endLine=2,endColumn=9::QIG002 50%25 of it%0Anext"
    )
