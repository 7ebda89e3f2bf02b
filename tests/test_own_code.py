"""qig-guard's own code passes qig-guard (the example of violations aside)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from qig_guard.config import load_pyproject
from qig_guard.engine.runner import run

ROOT = Path(__file__).resolve().parent.parent


def test_own_code_is_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    config = load_pyproject(ROOT / "pyproject.toml")
    config = replace(config, extend_exclude=("examples/violations",))
    paths = [ROOT / name for name in ("qig_guard", "tests", "benchmarks", "examples")]
    result = run(paths, config, jobs=1, use_cache=False)
    assert result.stats.files > 50
    assert [f"{f.path}:{f.line}: {f.code} {f.message}" for f in result.findings] == []
