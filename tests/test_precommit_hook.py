"""A real `pre-commit run --all-files` with this repository's `qig-guard` hook."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hook_repo import ROOT, git, pre_commit, snapshot_repo

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


def test_pre_commit_reports_violations_then_passes(tmp_path: Path) -> None:
    hook_repo, rev = snapshot_repo(tmp_path / "hook-repo")
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: qig-guard\n"
    )
    (project / "train.py").write_text(VIOLATION)
    git(project, "add", "-A")

    failing = pre_commit(project, tmp_path / "pre-commit-home", "run", "--all-files")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "train.py:2:5: QIG001" in failing.stdout

    (project / "train.py").write_text(FIXED)
    git(project, "add", "-A")
    passing = pre_commit(project, tmp_path / "pre-commit-home", "run", "--all-files")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout
