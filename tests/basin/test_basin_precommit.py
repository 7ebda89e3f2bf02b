"""Both hooks under a real ``pre-commit run`` in a temporary repository.

pre-commit clones the hook repository at a commit, so the test builds one: this
checkout's working tree, committed (``hook_repo.snapshot_repo``). pre-commit then
installs it into its own environment (pip fetches libcst and jsonschema).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hook_repo import snapshot_repo

from qig_guard.basin import save_basin

CHECKOUT = Path(__file__).resolve().parents[2]
GIT = ("git", "-c", "user.name=qig-guard tests", "-c", "user.email=tests@example.invalid")


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _hook_repository(tmp_path: Path) -> tuple[Path, str]:
    return snapshot_repo(tmp_path / "hook-repo")


def _pre_commit() -> str:
    found = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if found is None or shutil.which("git") is None:
        pytest.skip("pre-commit or git is not installed")
    if "id: qig-guard-basins" not in (CHECKOUT / ".pre-commit-hooks.yaml").read_text():
        pytest.skip("the hook manifest has no qig-guard-basins hook")
    return found


def test_hooks_under_pre_commit(tmp_path: Path) -> None:
    pre_commit = _pre_commit()
    hook_repository, rev = _hook_repository(tmp_path)
    project = tmp_path / "project"
    (project / "basins").mkdir(parents=True)
    _git(project, "init", "--quiet")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hook_repository}\n  rev: {rev}\n"
        "  hooks:\n  - id: qig-guard\n  - id: qig-guard-basins\n"
    )
    (project / "pyproject.toml").write_text("[tool.qig-guard]\n")
    (project / "train.py").write_text("def step(loss):\n    loss.backward()\n")
    basin = [0.125 * (i % 8) - 0.5 for i in range(64)]
    save_basin(project / "basins" / "gary.json", basin, source_model="A", extracted_from="a.pt")
    (project / "metrics.json").write_text("[NaN]\n")  # not a basin file: the hook skips it
    legacy = Path(__file__).parent / "data" / "sync_packet.json"
    environment = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    environment.pop("VIRTUAL_ENV", None)

    def run() -> subprocess.CompletedProcess[str]:
        _git(project, "add", "-A")
        return subprocess.run(
            [pre_commit, "run", "--all-files", "--color", "never"],
            cwd=project,
            env=environment,
            capture_output=True,
            text=True,
            timeout=540,
        )

    clean = run()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "qig-guard basin files" in clean.stdout and "Passed" in clean.stdout

    shutil.copy(legacy, project / "basins" / "ocean_sync.json")
    (project / "copy.py").write_text(
        "def transfer(student, teacher):\n    student.load_state_dict(teacher.state_dict())\n"
    )
    failing = run()
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "basins/ocean_sync.json:1:1: QIG105 a legacy cross-repository sync packet" in (
        failing.stdout
    )
    assert "metrics.json" not in failing.stdout
    assert "copy.py:2:" in failing.stdout
