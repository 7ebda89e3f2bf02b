"""``qig_guard.testing``: each helper passes on the invariant and fails with a clear message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from qig_guard.basin import save_basin
from qig_guard.testing import (
    assert_consolidation_improves,
    assert_fisher_distance_decreases,
    assert_valid_basin_file,
)

torch = pytest.importorskip("torch")
from qig_guard.testing import (  # noqa: E402 - after the torch skip
    assert_basin_close,
    assert_detached,
    assert_no_weight_copy,
    assert_ocean_frozen,
)


def fails(check: Callable[[], None], *fragments: str) -> str:
    with pytest.raises(AssertionError) as raised:
        check()
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message
    return message


def test_importing_the_helpers_imports_neither_torch_nor_libcst() -> None:
    code = "import sys, qig_guard.testing; print(sorted({'torch', 'libcst'} & set(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_valid_basin_file(tmp_path: Path) -> None:
    path = save_basin(tmp_path / "gary.json", [0.5] * 64, source_model="G", extracted_from="g.pt")
    assert_valid_basin_file(path)
    path.write_text(path.read_text().replace('"kappa_eff": 64.21', '"kappa_eff": 1.0'))
    fails(lambda: assert_valid_basin_file(path), "not a valid basin file", "QIG104", "kappa_eff")


def test_detached() -> None:
    leaf = torch.ones(3, requires_grad=True)
    assert_detached(leaf.detach())
    fails(lambda: assert_detached(leaf, "ocean basin"), "ocean basin is not detached", "grad")
    fails(lambda: assert_detached(leaf * 2), "grad_fn=MulBackward0")


def test_ocean_frozen() -> None:
    ocean, student = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ocean.requires_grad_(False)
    assert_ocean_frozen(ocean, torch.optim.SGD(student.parameters(), lr=0.1))
    both = torch.optim.Adam([*student.parameters(), ocean.weight])
    fails(lambda: assert_ocean_frozen(ocean, both), "optimizer #0 (Adam) holds weight")
    ocean.bias.requires_grad_(True)  # noqa: QIG003 - the helper must catch this
    fails(lambda: assert_ocean_frozen(ocean), "parameters require grad: bias")
    basin = torch.zeros(4)
    assert_ocean_frozen(basin)
    trained = torch.zeros(4, requires_grad=True)
    fails(lambda: assert_ocean_frozen(trained), "the ocean basin is not detached")
    held = torch.optim.SGD([trained], lr=0.1)
    fails(lambda: assert_ocean_frozen(trained.detach_(), held), "holds the ocean basin")


def test_ocean_buffers_must_be_detached() -> None:
    ocean = torch.nn.Module()
    ocean.register_buffer("basin", torch.ones(2, requires_grad=True) * 2)
    fails(lambda: assert_ocean_frozen(ocean), "buffer basin is not detached")


def test_no_weight_copy() -> None:
    teacher, student = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    assert_no_weight_copy(student, teacher)
    student.load_state_dict(teacher.state_dict())  # noqa: QIG001 - the helper must catch this
    fails(lambda: assert_no_weight_copy(student, teacher), "copies the teacher's weights")


def test_fisher_distance_decreases() -> None:
    assert_fisher_distance_decreases(2.0, torch.tensor(1.5))
    fails(lambda: assert_fisher_distance_decreases(1.0, 1.0), "did not decrease: 1.0 -> 1.0")
    fails(lambda: assert_fisher_distance_decreases(float("nan"), 1.0), "not finite")


def test_consolidation_improves() -> None:
    good = {
        "basin_distance_before": 2.0,
        "basin_distance_after": 0.5,
        "consolidation_improvement": 1.5,
        "steps": 50,
    }
    assert_consolidation_improves(good)
    fails(
        lambda: assert_consolidation_improves({"basin_distance_before": 1.0}),
        "lack basin_distance_after, consolidation_improvement",
    )
    worse = {**good, "basin_distance_after": 3.0, "consolidation_improvement": -1.0}
    fails(lambda: assert_consolidation_improves(worse), "did not move toward the basin")
    inconsistent = {**good, "consolidation_improvement": 1.0}
    fails(lambda: assert_consolidation_improves(inconsistent), "before - after is 1.5")


def test_basin_close_uses_the_fisher_metric() -> None:
    a, b = [0.0, 0.0], [0.1, 0.0]
    assert_basin_close(a, b, [1.0, 1.0], atol=0.11)
    fails(lambda: assert_basin_close(a, b, [4.0, 1.0], atol=0.11), "0.2", "atol=0.11")
    assert_basin_close(torch.tensor(a), torch.tensor(b, requires_grad=True), torch.ones(2), 0.2)


HELPER_FAILURE = """
from qig_guard.testing import assert_fisher_distance_decreases


def test_distance():
    before, after = 1.0, 1.25
    assert_fisher_distance_decreases(before, after)
"""


def test_failures_point_at_the_test_not_the_helper(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_helper=HELPER_FAILURE)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       assert_fisher_distance_decreases(before, after)",
            "E       AssertionError: Fisher distance did not decrease: 1.0 -> 1.25",
            "E       assert 1.25 < 1.0",
        ]
    )
    result.stdout.no_fnmatch_line("*qig_guard/testing.py*")
