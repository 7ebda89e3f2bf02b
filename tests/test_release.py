"""`python -m build` makes an sdist and a wheel that install without a network
and work: the command, its data files (the basin schema), the pytest plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from qig_guard import __version__

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _run(*args: str | Path, cwd: Path, env: dict[str, str] = OFFLINE) -> str:
    completed = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=out)
    return out


def test_build_makes_a_complete_sdist_and_a_wheel(dist: Path) -> None:
    wheel = dist / f"qig_guard-{__version__}-py3-none-any.whl"
    sdist = dist / f"qig_guard-{__version__}.tar.gz"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"qig_guard/basin/basin-v1.schema.json", "qig_guard/py.typed"} <= names
    assert not any(name.startswith("tests/") for name in names)
    entry_points = zipfile.ZipFile(wheel).read(
        f"qig_guard-{__version__}.dist-info/entry_points.txt"
    )
    assert b"qig-guard = qig_guard.cli:main" in entry_points
    assert b"qig_guard = qig_guard.pytest_plugin" in entry_points
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        "README.md",
        "docs/rules.md",
        "tests/conftest.py",
        "tests/data/sarif-schema-2.1.0.json",
        "examples/violations/train_constellation.py",
    } <= members


@pytest.mark.parametrize("artifact", ["whl", "tar.gz"])
def test_artifact_installs_offline_and_runs(dist: Path, tmp_path: Path, artifact: str) -> None:
    (path,) = dist.glob(f"*.{artifact}")
    target = tmp_path / "site"
    _run(
        sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
        "--target", target, path, cwd=tmp_path,
    )  # fmt: skip
    # The installed copy, not this checkout (its dependencies come from this environment).
    env = {**OFFLINE, "PYTHONPATH": str(target)}
    where = _run(
        sys.executable, "-c", "import qig_guard; print(qig_guard.__file__)", cwd=tmp_path, env=env
    )
    assert Path(where.strip()).is_relative_to(target)
    example = ROOT / "examples"
    checked = subprocess.run(
        [sys.executable, "-m", "qig_guard", "check", "--isolated", "--no-cache", str(example)],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 1 and " QIG001 " in checked.stdout, checked.stderr
    _run(
        sys.executable, "-m", "qig_guard", "basin", "validate",
        example / "basins" / "gary-a.basin.json", cwd=tmp_path, env=env,
    )  # fmt: skip
