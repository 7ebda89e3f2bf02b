"""Basin files collected as test items: selection, pass and fail output, ini options."""

from __future__ import annotations

from pathlib import Path

import pytest

from qig_guard.basin import save_basin

BASIN = [0.25, -0.5, 0.125, 1.0] * 16


def write_basin(path: Path, **fields: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arguments: dict[str, object] = {"source_model": "Gary-A", "extracted_from": "gary-a.pt"}
    arguments.update(fields)
    return save_basin(path, BASIN, **arguments)  # type: ignore[arg-type]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """``basins/`` with a valid and an invalid basin, a non-basin JSON file and a test."""
    write_basin(pytester.path / "basins" / "gary-a.json")
    write_basin(
        pytester.path / "basins" / "gary-b.json",
        physics_constants={"kappa_eff": 10.0, "beta": 0.44},
    )
    pytester.makefile(".json", settings='{"lr": 0.1}')
    pytester.makepyfile(test_model="def test_forward():\n    pass\n")
    return pytester


def test_basin_files_are_not_collected_without_the_option(project: pytest.Pytester) -> None:
    result = project.runpytest("--co", "-q")
    result.stdout.fnmatch_lines(["test_model.py::test_forward", "1 test collected*"])


def test_each_basin_file_is_one_item_and_other_json_is_left_alone(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--qig-basins", "--co", "-q")
    result.stdout.fnmatch_lines(
        ["basins/gary-a.json::basin", "basins/gary-b.json::basin", "test_model.py::test_forward"]
    )
    result.stdout.fnmatch_lines(["3 tests collected*"])
    result.stdout.no_fnmatch_line("*settings.json*")


def test_invalid_basin_fails_with_the_validators_findings_only(project: pytest.Pytester) -> None:
    result = project.runpytest("--qig-basins")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ basin file basins/gary-b.json _*",
            "basins/gary-b.json:*: QIG104 $.physics_constants.kappa_eff: kappa_eff = 10.0 is "
            "outside the frozen facts*",
            "FAILED basins/gary-b.json::basin - *QIG104*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*qig_guard/*.py*")


def test_schema_errors_name_the_json_path(pytester: pytest.Pytester) -> None:
    path = write_basin(pytester.path / "gary.basin.json")
    path.write_text(path.read_text().replace('"source_model": "Gary-A",\n', ""))
    result = pytester.runpytest("--qig-basins")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["gary.basin.json:*: QIG100 *source_model*"])


def test_every_finding_is_one_line_size_and_provenance_included(
    pytester: pytest.Pytester,
) -> None:
    path = write_basin(pytester.path / "basins" / "big.json")
    text = path.read_text().replace('"extracted_from": "gary-a.pt"', '"extracted_from": ""')
    path.write_text(text.replace("{", "{" + " " * 5000, 1))
    result = pytester.runpytest("--qig-basins")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "basins/big.json:*: QIG103 *extracted_from*",
            "basins/big.json:1:1: QIG101 file is * bytes; basin files are at most 4096 bytes*",
        ]
    )


def test_keyword_and_node_id_select_basin_files(project: pytest.Pytester) -> None:
    by_keyword = project.runpytest("--qig-basins", "-k", "gary-a or gary_b", "-v")
    by_keyword.assert_outcomes(passed=1)
    by_keyword.stdout.fnmatch_lines(["basins/gary-a.json::basin PASSED*"])
    by_node_id = project.runpytest("--qig-basins", "basins/gary-b.json::basin")
    by_node_id.assert_outcomes(failed=1)
    by_marker = project.runpytest("--qig-basins", "-m", "qig_basin", "-q")
    by_marker.assert_outcomes(passed=1, failed=1, deselected=1)


def test_an_explicitly_named_json_file_is_validated(project: pytest.Pytester) -> None:
    result = project.runpytest("--qig-basins", "settings.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["settings.json:*: QIG100 *"])


def test_ini_paths_turn_basins_on_for_every_json_file_under_them(
    project: pytest.Pytester,
) -> None:
    write_basin(project.path / "identities" / "ocean.json")
    project.makeini("[pytest]\nqig_basin_paths = identities\n")
    result = project.runpytest("--co", "-q")
    result.stdout.fnmatch_lines(["identities/ocean.json::basin", "2 tests collected*"])


def test_ini_glob_turns_basins_on_for_matching_files(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nqig_basin_glob = *-a.json\n")
    result = project.runpytest("--co", "-q")
    result.stdout.fnmatch_lines(["basins/gary-a.json::basin", "2 tests collected*"])


def test_project_basin_globs_and_excludes_apply(project: pytest.Pytester) -> None:
    write_basin(project.path / "identities" / "ocean.json")
    project.makepyprojecttoml(
        """
        [tool.qig-guard]
        exclude = ["basins/gary-b.json"]

        [tool.qig-guard.basin]
        files = ["basins/*.json", "identities/*.json"]
        """
    )
    result = project.runpytest("--qig-basins", "--co", "-q")
    result.stdout.fnmatch_lines(
        ["basins/gary-a.json::basin", "identities/ocean.json::basin", "3 tests collected*"]
    )


def test_project_frozen_facts_decide_validity(project: pytest.Pytester) -> None:
    project.makepyprojecttoml(
        """
        [tool.qig-guard.frozen-facts]
        kappa_eff = { value = 10.0, tolerance = 0.5 }
        """
    )
    result = project.runpytest("--qig-basins", "basins")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED basins/gary-a.json::basin - *QIG104*"])


def test_a_bad_configuration_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyprojecttoml("[tool.qig-guard.basin]\nmax-size = -1\n")
    result = project.runpytest("--qig-basins")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*qig-guard: tool.qig-guard.basin.max-size: *"])


def test_a_missing_ini_basin_path_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nqig_basin_paths = nonexist\n")
    result = project.runpytest("--co", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*qig-guard: qig_basin_paths: *nonexist: no such file or folder"])
