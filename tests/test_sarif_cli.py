"""SARIF from the command line, as GitHub code scanning reads it: a category per
command, fingerprints that survive line moves, help for every rule, paths
relative to the repository root and percent-encoded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from qig_guard.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"
SHARED_SCHEMA = ROOT.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
COPY = "    student.load_state_dict(teacher.state_dict())\n"
SAFE = "    model.basin_matcher.target_basin = new_basin\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def sarif(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    main([*args, "--output-format", "sarif"])
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, SCHEMA)
    return document


def _train(path: Path, lines_above: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n" * lines_above + "def f(student, teacher, model):\n" + COPY + SAFE + COPY)


def test_the_schema_is_the_shared_one() -> None:
    if not SHARED_SCHEMA.is_file():
        pytest.skip("no ../shared/schemas next to this checkout")
    assert SCHEMA_PATH.read_bytes() == SHARED_SCHEMA.read_bytes()


def test_check_and_basin_validate_have_distinct_categories(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _train(repo / "train.py")
    (repo / "basins").mkdir()
    (repo / "basins" / "bad.json").write_text('{"schema_version": 1}')
    check = sarif(capsys, "check", "--no-cache")
    basin = sarif(capsys, "basin", "validate", "basins")
    assert check["runs"][0]["automationDetails"] == {"id": "qig-guard/check/"}
    assert basin["runs"][0]["automationDetails"] == {"id": "qig-guard/basin-validate/"}
    assert basin["runs"][0]["results"]


def test_fingerprints_are_unique_and_survive_line_moves(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _train(repo / "src" / "train.py")
    before = sarif(capsys, "check", "--no-cache")["runs"][0]["results"]
    _train(repo / "src" / "train.py", lines_above=5)
    after = sarif(capsys, "check", "--no-cache")["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in after] == [
        r["locations"][0]["physicalLocation"]["region"]["startLine"] + 5 for r in before
    ]
    prints = [r["partialFingerprints"] for r in before]
    assert [r["partialFingerprints"] for r in after] == prints
    assert len({json.dumps(p) for p in prints}) == len(prints) == 3  # two identical copies


def test_every_rule_has_a_help_uri_that_exists_in_the_docs(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _train(repo / "train.py")
    (repo / "basins").mkdir()
    (repo / "basins" / "bad.json").write_text('{"schema_version": 1}')
    rules = [
        *sarif(capsys, "check", "--no-cache")["runs"][0]["tool"]["driver"]["rules"],
        *sarif(capsys, "basin", "validate", "basins")["runs"][0]["tool"]["driver"]["rules"],
    ]
    ids = {rule["id"] for rule in rules}
    assert {f"QIG{n:03}" for n in (*range(12), *range(100, 107))} <= ids
    docs = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in docs.splitlines()
        if line.startswith("## ")
    }
    for rule in rules:
        uri = rule["helpUri"]
        assert uri.startswith("https://github.com/qig-guard/qig-guard/blob/main/docs/rules.md#")
        assert uri.split("#")[1] in anchors, rule["id"]


def test_uris_are_relative_to_the_repository_root_and_percent_encoded(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _train(repo / "my dir" / "a#b%.py")
    monkeypatch.chdir(repo / "my dir")
    run = sarif(capsys, "check", "--no-cache", ".")["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.as_uri() + "/"}}
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert locations[0] == {"uri": "my%20dir/a%23b%25.py", "uriBaseId": "%SRCROOT%"}
    fixed = next(r for r in run["results"] if "fixes" in r)
    change = fixed["fixes"][0]["artifactChanges"][0]["artifactLocation"]
    assert change == locations[0]
