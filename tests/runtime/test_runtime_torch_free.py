"""Importing qig_guard, its checker and basin validator, or running a check, never imports torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )


def test_import_and_check_do_not_import_torch(tmp_path):
    target = tmp_path / "train.py"
    target.write_text("import torch\n\nmodel = torch.nn.Linear(2, 2)\n")
    result = _run(
        f"""
        import sys
        import qig_guard, qig_guard.basin, qig_guard.engine.checker
        from qig_guard.cli import main
        try:
            main(["check", {str(target)!r}])
        except SystemExit:
            pass
        assert "torch" not in sys.modules, "torch was imported"
        print("torch-free")
        """
    )
    assert "torch-free" in result.stdout, result.stderr


def test_the_probe_would_see_torch_if_it_were_imported():
    result = _run("import sys, qig_guard.runtime; print('torch' in sys.modules)")
    assert result.stdout.strip() == "True", result.stderr
