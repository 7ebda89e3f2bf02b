"""``--qig-guard``: Python files as items failing with their findings, content-cached."""

from __future__ import annotations

import pytest

WEIGHT_COPY = """\
def distil(student, teacher):
    student.load_state_dict(teacher.state_dict())
"""

# Clean, but passes QIG001's trigger (a state dict flows into load_state_dict), so parsed.
RESTORE = """\
def restore(model):
    snapshot = model.state_dict()
    model.load_state_dict(snapshot)
"""

# Files are checked in worker processes: each parse is appended to a log file.
COUNT_PARSES = """
import pathlib

import qig_guard.engine.checker

LOG = pathlib.Path("parses.log")
LOG.unlink(missing_ok=True)
_check_text = qig_guard.engine.checker.check_text


def counting_check_text(path, *args, **kwargs):
    with LOG.open("a") as log:
        log.write(path + "\\n")
    return _check_text(path, *args, **kwargs)


qig_guard.engine.checker.check_text = counting_check_text


def pytest_sessionfinish(session):
    parses = LOG.read_text().split() if LOG.exists() else []
    print(f"\\nparsed: {sorted(parses)}")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(
        distil=WEIGHT_COPY,
        test_model="def test_forward():\n    pass\n",
    )
    return pytester


def test_python_files_are_checked_only_with_the_option(project: pytest.Pytester) -> None:
    project.runpytest("--co", "-q").stdout.fnmatch_lines(["1 test collected*"])
    result = project.runpytest("--qig-guard", "--co", "-q")
    result.stdout.fnmatch_lines(
        ["distil.py::qig-guard", "test_model.py::qig-guard", "test_model.py::test_forward"]
    )


def test_a_finding_fails_its_file_with_the_finding(project: pytest.Pytester) -> None:
    result = project.runpytest("--qig-guard")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ qig-guard distil.py _*",
            "distil.py:2:5: QIG001 weights of `teacher` copied into `student`*",
            "FAILED distil.py::qig-guard - distil.py:2:5: QIG001*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_project_configuration_is_respected(project: pytest.Pytester) -> None:
    project.makepyfile(legacy=WEIGHT_COPY, other=WEIGHT_COPY)
    project.makepyprojecttoml(
        """
        [tool.qig-guard]
        exclude = ["legacy.py"]
        per-file-ignores = { "other.py" = ["QIG001"] }
        """
    )
    result = project.runpytest("--qig-guard", "-m", "qig_guard", "-v")
    result.stdout.no_fnmatch_line("*legacy.py*")
    result.stdout.fnmatch_lines(["other.py::qig-guard PASSED*"])
    result.assert_outcomes(passed=2, failed=1, deselected=1)


def test_unchanged_files_are_not_parsed_again(project: pytest.Pytester) -> None:
    project.makeconftest(COUNT_PARSES)
    project.makepyfile(restore=RESTORE)
    first = project.runpytest_subprocess("--qig-guard", "-p", "no:cacheprovider")
    first.stdout.fnmatch_lines(["parsed: ['distil.py', 'restore.py']"])
    project.makepyfile(distil=WEIGHT_COPY + "\n# edited\n")
    second = project.runpytest_subprocess("--qig-guard", "-p", "no:cacheprovider")
    second.stdout.fnmatch_lines(["parsed: ['distil.py']"])
    second.assert_outcomes(passed=4, failed=1)


def test_a_file_that_crashes_the_parser_fails_alone(project: pytest.Pytester) -> None:
    project.makepyfile(deep=WEIGHT_COPY + "x = " + "-" * 20000 + "1\n")
    result = project.runpytest("--qig-guard")  # the session survives and reports both
    result.stdout.fnmatch_lines(["*deep.py:*QIG000*nests too deeply*"])
    result.assert_outcomes(passed=2, failed=2)
