"""The checking child process: a file that kills or stalls the parser costs a finding only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qig_guard.server.worker import Worker

VIOLATION = "def retarget(model, b):\n    model.basin_matcher.target_basin = b\n"
# libcst's native parser overflows its stack (the process dies) on nesting this deep.
CRASHES_LIBCST = "model.basin_matcher.target_basin = " + "(" * 3000 + "b" + ")" * 3000 + "\n"


@pytest.fixture
def worker() -> Iterator[Worker]:
    child = Worker(use_cache=False)
    yield child
    child.stop()


def _codes(worker: Worker, path: Path, text: str) -> list[str]:
    return [finding.code for finding in worker.check("file:///a", path, text, True)]


def test_a_crash_is_a_finding_and_the_next_check_works(worker: Worker, tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    assert _codes(worker, path, VIOLATION) == ["QIG002"]
    (crashed,) = worker.check("file:///a", path, CRASHES_LIBCST, True)
    # (With a stack large enough for libcst, the engine's own depth guard answers.)
    assert crashed.code == "QIG000"
    assert "not checked" in crashed.message or "too deeply" in crashed.message
    assert _codes(worker, path, VIOLATION) == ["QIG002"]  # a fresh child


def test_time_limit(tmp_path: Path) -> None:
    slow = Worker(use_cache=False, time_limit=0.001)
    try:
        (finding,) = slow.check("file:///a", tmp_path / "a.py", VIOLATION * 200, True)
        assert finding.code == "QIG000" and "took longer than 0.001 s" in finding.message
        slow.time_limit = 120
        assert _codes(slow, tmp_path / "a.py", VIOLATION) == ["QIG002"]
    finally:
        slow.stop()


def test_fixes_through_the_child(worker: Worker, tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    (finding,) = worker.check("file:///a", path, VIOLATION, True)
    assert finding.fix is not None and worker.fix_parses("file:///a", VIOLATION, finding.fix)
    fixed = worker.fix_all(path, VIOLATION, [finding])
    assert fixed is not None and "set_target_basin(b)" in fixed
    worker.forget("file:///a")
