"""Fix application: edits, re-parse guard, idempotency, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from qig_guard.config import Config
from qig_guard.engine.findings import Edit
from qig_guard.engine.fixer import apply_edits, fix_source, write_atomic
from qig_guard.rules.base import Rule


def test_apply_edits_back_to_front_and_skips_overlaps() -> None:
    source = "abc\ndef\n"
    edits = [Edit(1, 1, 1, 2, "X"), Edit(2, 2, 2, 4, "YZW"), Edit(2, 1, 2, 3, "overlap")]
    assert apply_edits(source, edits) == "Xbc\ndYZW\n"


def test_fix_source_applies_and_is_idempotent(torch_save_rule: type[Rule]) -> None:
    source = "import torch\ntorch.save(basin, p)\nx = torch.save(b2, q)  # keep\n"
    outcome = fix_source("m.py", source, Config(), [torch_save_rule], unsafe=False)
    assert outcome.source == "import torch\nsave_basin(basin, p)\nx = save_basin(b2, q)  # keep\n"
    assert outcome.applied == 2 and outcome.remaining == []
    again = fix_source("m.py", outcome.source, Config(), [torch_save_rule], unsafe=False)
    assert again.applied == 0 and again.source == outcome.source


def test_fix_that_breaks_syntax_is_refused(
    torch_save_rule: type[Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    from qig_guard.engine import fixer

    monkeypatch.setattr(fixer, "apply_edits", lambda source, edits: source + "def (:\n")
    outcome = fix_source("m.py", "torch.save(b, p)\n", Config(), [torch_save_rule], unsafe=False)
    assert outcome.refused and outcome.source == "torch.save(b, p)\n" and outcome.applied == 0


def test_write_atomic_keeps_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "script.py"
    target.write_text("old\n")
    os.chmod(target, 0o751)
    write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]


def test_multi_line_fixes_keep_the_block_indentation() -> None:
    """A fix whose replacement spans lines keeps the enclosing block's indentation and
    the call's own layout (one argument per line, trailing comma)."""
    from qig_guard.rules.qig002_direct_basin_assignment import DirectBasinAssignment
    from qig_guard.rules.qig011_basin_missing_provenance import BasinMissingProvenance

    source = (
        "import json\n\n\n"
        "class Coordinator:\n"
        "    def sync(self, gary, t, f):\n"
        "        if gary:\n"
        "            self.b.basin_matcher.target_basin = (\n"
        "                gary.basin.detach()\n"
        "                .clone()\n"
        "            )\n"
        "            json.dump(\n"
        '                {"basin": gary.basin.tolist(), "source_model": "g", "timestamp": t},\n'
        "                f,\n"
        "                indent=2,\n"
        "            )\n"
    )
    rules = [DirectBasinAssignment, BasinMissingProvenance]
    outcome = fix_source("c.py", source, Config(), rules, unsafe=True)
    assert outcome.source == (
        "import json\n\n\n"
        "class Coordinator:\n"
        "    def sync(self, gary, t, f):\n"
        "        if gary:\n"
        "            self.b.basin_matcher.set_target_basin(\n"
        "                gary.basin.detach()\n"
        "                .clone()\n"
        "            )\n"
        "            json.dump(\n"
        '                {"basin": gary.basin.tolist(), "source_model": "g", "timestamp": t},\n'
        "                f,\n"
        "                indent=2,\n"
        "                allow_nan=False,\n"
        "            )\n"
    )
