"""Registration: a plain run pays nothing, and ``-p no:qig_guard`` turns the plugin off."""

from __future__ import annotations

import pytest

REPORT_MODULES = """
import sys


def pytest_sessionfinish(session):
    loaded = session.config.pluginmanager.has_plugin("qig_guard")
    heavy = sorted(m for m in ("torch", "libcst", "jsonschema") if m in sys.modules)
    print(f"\\nqig_guard loaded={loaded} heavy={heavy}")
"""


@pytest.fixture
def plain_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(REPORT_MODULES)
    pytester.makepyfile(test_model="def test_forward():\n    pass\n")
    pytester.makefile(".json", config='{"lr": 0.1}')
    return pytester


def test_plain_collection_has_no_extra_items_and_imports_nothing_heavy(
    plain_project: pytest.Pytester,
) -> None:
    result = plain_project.runpytest_subprocess("--co", "-q")
    result.stdout.fnmatch_lines(["test_model.py::test_forward", "1 test collected*"])
    result.stdout.fnmatch_lines(["qig_guard loaded=True heavy=[[][]]"])


def test_disabled_plugin_rejects_its_options(plain_project: pytest.Pytester) -> None:
    result = plain_project.runpytest_subprocess("-p", "no:qig_guard", "--qig-basins")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --qig-basins*"])


def test_disabled_plugin_ignores_its_ini_options(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqig_basin_paths = basins\n")
    pytester.mkdir("basins").joinpath("gary.json").write_text("{}")
    pytester.makepyfile(test_model="def test_forward():\n    pass\n")
    enabled = pytester.runpytest_subprocess("--co", "-q")
    enabled.stdout.fnmatch_lines(["basins/gary.json::basin", "2 tests collected*"])
    disabled = pytester.runpytest_subprocess("--co", "-q", "-p", "no:qig_guard")
    disabled.stdout.fnmatch_lines(["test_model.py::test_forward", "1 test collected*"])
    disabled.stdout.no_fnmatch_line("*gary.json*")


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--qig-basins*", "*--qig-guard*", "*qig_basin_paths*"])
