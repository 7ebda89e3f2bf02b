"""A real `pre-commit run --all-files` with this repository's `qig-guard` hook."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hook_repo import ROOT, git, pre_commit, snapshot_repo

from qig_guard.cli import main

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs git and a git checkout of qig-guard",
)

VIOLATION = """\
def make_student(teacher, student):
    student.load_state_dict(teacher.state_dict())
    return student
"""
FIXED = """\
def make_student(teacher, student, extract_basin):
    student.basin_matcher.set_target_basin(extract_basin(teacher))
    return student
"""


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """This checkout as a hook repository, and one pre-commit home for the module."""
    hook_repo, rev = snapshot_repo(tmp_path_factory.mktemp("hook-repo"))
    return hook_repo, rev, tmp_path_factory.mktemp("pre-commit-home")


def _project(directory: Path, hook: tuple[Path, str, Path], args: str = "") -> Path:
    hook_repo, rev, _ = hook
    directory.mkdir()
    git(directory, "init", "-q")
    (directory / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: qig-guard\n"
        + (f"        args: {args}\n" if args else "")
    )
    return directory


def test_pre_commit_reports_violations_then_passes(
    tmp_path: Path, hook: tuple[Path, str, Path]
) -> None:
    project = _project(tmp_path / "project", hook)
    (project / "train.py").write_text(VIOLATION)
    git(project, "add", "-A")

    failing = pre_commit(project, hook[2], "run", "--all-files")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "train.py:2:5: QIG001" in failing.stdout

    (project / "train.py").write_text(FIXED)
    git(project, "add", "-A")
    passing = pre_commit(project, hook[2], "run", "--all-files")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout


def test_pre_commit_with_a_baseline_blocks_only_new_violations(
    tmp_path: Path, hook: tuple[Path, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path / "project", hook, "[--baseline, qig-guard-baseline.json]")
    (project / "legacy.py").write_text(VIOLATION)
    git(project, "add", "-A")
    assert pre_commit(project, hook[2], "run", "--all-files").returncode == 1
    monkeypatch.chdir(project)  # the README's adoption step, run once by hand
    assert main(["check", "--baseline", "qig-guard-baseline.json", "--update-baseline"]) == 0
    git(project, "add", "qig-guard-baseline.json")
    # The old finding no longer blocks a commit that touches its file...
    (project / "legacy.py").write_text("import os\n\n" + VIOLATION)
    git(project, "add", "-A")
    passing = pre_commit(project, hook[2], "run")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    # ...a new one does.
    (project / "new.py").write_text(VIOLATION)
    git(project, "add", "new.py")
    failing = pre_commit(project, hook[2], "run")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "new.py:2:5: QIG001" in failing.stdout
    assert "legacy.py" not in failing.stdout
