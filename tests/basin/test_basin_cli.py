"""``qig-guard basin validate``: formats, exit codes, configuration; ``register`` on its own."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import validators  # type: ignore[import-untyped]

from qig_guard.basin import save_basin
from qig_guard.basin.cli import register

DATA = Path(__file__).parent / "data"
SARIF_SCHEMA = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"


def _run(*args: str) -> int:
    parser = argparse.ArgumentParser(prog="qig-guard")
    register(parser.add_subparsers(dest="command", required=True))
    namespace = parser.parse_args(["basin", *args])
    result: int = namespace.func(namespace)
    return result


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the working directory) with one valid and one invalid basin."""
    (tmp_path / "pyproject.toml").write_text("[tool.qig-guard]\n")
    (tmp_path / "basins").mkdir()
    basin = [0.125 * (i % 8) for i in range(64)]
    save_basin(tmp_path / "basins" / "good.json", basin, source_model="A", extracted_from="a.pt")
    bad = save_basin(tmp_path / "basins" / "bad.json", basin, source_model="B", extracted_from="b")
    bad.write_text(bad.read_text().replace('"beta": 0.44', '"beta": 0.6'))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_valid_files_exit_0_and_print_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("validate", "basins/good.json") == 0
    assert capsys.readouterr().out == ""


def test_findings_exit_1_in_text(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("validate", "basins") == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("basins/bad.json:")
    assert " QIG104 $.physics_constants.beta: beta = 0.6 is outside" in lines[0]
    assert _run("validate", "basins", "--statistics") == 1
    lines = capsys.readouterr().out.splitlines()  # only the table, as in `check`
    assert [line.split() for line in lines] == [
        ["1", "QIG104", "basin-frozen-facts"],
        ["1", "total"],
    ]


def test_json_report_counts_files(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("validate", "basins", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["summary"] == {"files_checked": 2, "findings": 1, "by_code": {"QIG104": 1}}


def test_sarif_report_is_valid_sarif(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("validate", "basins", str(DATA / "sync_packet.json"), "--format", "sarif") == 1
    sarif = json.loads(capsys.readouterr().out)
    schema = json.loads(SARIF_SCHEMA.read_text())
    validators.validator_for(schema)(schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert sorted(result["ruleId"] for result in results) == ["QIG104", "QIG105"]
    rules = {rule["id"] for rule in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {"QIG100", "QIG106"} <= rules


def test_github_format_and_output_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("validate", "basins", "--format", "github", "-o", "report.txt") == 1
    assert capsys.readouterr().out == ""
    text = (project / "report.txt").read_text()
    assert text.startswith("::error file=basins/bad.json,line=")
    assert "title=QIG104 basin-frozen-facts" in text


def test_configuration_applies(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.qig-guard.frozen-facts]\nbeta = { value = 0.6, tolerance = 0.01 }\n"
    )
    assert _run("validate", "basins/bad.json") == 0
    other = project / "other.toml"
    other.write_text("[tool.qig-guard.basin]\nmax-size = 100\n")
    assert _run("validate", "basins/good.json", "--config", str(other)) == 1


def test_missing_path_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("validate", "nowhere.json") == 2
    assert "nowhere.json: no such file or folder" in capsys.readouterr().err
    assert _run("validate", "basins", "-o", "no/such/dir/report.txt") == 2
    assert _run("convert", str(DATA / "sync_packet.json"), "-o", "no/such/dir/new.json") == 2
    assert "no/such/dir: no such folder" in capsys.readouterr().err


def test_convert_of_a_version_1_file_is_a_no_op(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("convert", "basins/good.json", "-o", "new.json") == 0
    assert "already a version 1 basin file" in capsys.readouterr().out
    assert not (project / "new.json").exists()


def test_through_the_installed_command(project: Path) -> None:
    command = shutil.which("qig-guard", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.skip("qig-guard is not installed next to this Python")
    (project / "pyproject.toml").write_text("[tool.qig-guard.basin]\nmax-size = -5\n")
    broken = subprocess.run(
        [command, "basin", "validate", "basins"], capture_output=True, text=True
    )
    assert broken.returncode == 2
    assert "tool.qig-guard.basin.max-size" in broken.stderr
    (project / "pyproject.toml").write_text("[tool.qig-guard]\n")
    done = subprocess.run([command, "basin", "validate", "basins"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout.startswith("basins/bad.json:")


EXAMPLES = Path(__file__).parents[2] / "examples" / "basins"


def test_a_folder_is_searched_to_any_depth_and_the_count_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run("validate", str(EXAMPLES)) == 1
    captured = capsys.readouterr()
    (finding,) = captured.out.splitlines()
    assert finding.startswith(f"{EXAMPLES}/legacy/ocean-sync-packet.json:1:1: QIG105 ")
    assert finding.endswith(
        f"convert it with `qig-guard basin convert {EXAMPLES}/legacy/ocean-sync-packet.json "
        "-o NEW.json`"
    )
    assert captured.err == "2 basin files checked\n"


def test_an_empty_folder_is_a_warning_not_silence(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "empty").mkdir()
    (project / "empty" / "metrics.json").write_text("{}")  # matches no basin glob
    assert _run("validate", "empty") == 0
    err = capsys.readouterr().err
    assert "qig-guard: warning: no basin files found in empty (files globs: **/*basin*.json" in err
    assert err.endswith("0 basin files checked\n")
    assert _run("validate", "basins/good.json") == 0  # files only: no folder summary
    assert capsys.readouterr().err == ""


def test_the_expected_dimension_is_configurable(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = save_basin(
        project / "basins" / "one.json",
        [0.0],
        source_model="A",
        extracted_from="a.pt",
        expected_dim=None,
    )
    assert _run("validate", str(one)) == 1
    assert "QIG100 $.dim: is 1, but basins here are 64-dimensional" in capsys.readouterr().out
    (project / "pyproject.toml").write_text("[tool.qig-guard.basin]\ndim = 1\n")
    assert _run("validate", str(one)) == 0
    assert _run("validate", "basins/good.json") == 1
    assert "is 64, but basins here are 1-dimensional" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("[tool.qig-guard.basin]\nmax_size = 10\n", "tool.qig-guard.basin.max_size"),
        (
            "[tool.qig-guard.frozen-facts]\nbeta = { value = 0.44, tol = 0.1 }\n",
            "tool.qig-guard.frozen-facts.beta.tol",
        ),
    ],
)
def test_every_command_reports_misspelled_keys_in_every_table(
    project: Path, capsys: pytest.CaptureFixture[str], table: str, key: str
) -> None:
    from qig_guard.cli import main

    (project / "pyproject.toml").write_text(table)
    (project / "train.py").write_text("x = 1\n")
    for command in (["check", "train.py"], ["basin", "validate", "basins/good.json"]):
        assert main(command) == 2, command
        assert f"{key}: unknown key" in capsys.readouterr().err, command
