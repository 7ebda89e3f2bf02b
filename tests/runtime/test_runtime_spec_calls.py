"""Calls written as in the spec work, or say clearly why not."""

from __future__ import annotations

import copy
import pickle
import warnings

import pytest

torch = pytest.importorskip("torch")

from qig_guard.runtime import sync_constellation_basins, transfer_basin  # noqa: E402
from qig_guard.runtime.transfer import reachable_floor  # noqa: E402


def test_sync_accepts_the_spec_keyword_names():
    active, ocean = torch.randn(64), torch.randn(64)
    observers = [torch.randn(64), torch.randn(64)]
    ocean_out, moved = sync_constellation_basins(
        active_basin=active, observer_basins=observers, ocean_basin=ocean, sync_weight=0.1
    )
    assert torch.equal(ocean_out, ocean)
    assert torch.allclose(moved[1], observers[1] + 0.1 * (active - observers[1]))


def test_current_basin_is_the_model_basin_and_read_only(make_model):
    model = make_model()
    model.eval()
    current = model.basin_matcher.current_basin
    assert current.requires_grad  # differentiable, as the spec's loss.backward() needs
    assert torch.equal(current.detach(), model.compute_basin().detach())
    with pytest.raises(AttributeError):
        model.basin_matcher.current_basin = torch.zeros(64)


def test_copies_measure_themselves(make_model):
    model = make_model()
    model.eval()
    twin = copy.deepcopy(model)
    restored = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        twin.block.out.bias.add_(1.0)
        assert not torch.equal(twin.basin_matcher.current_basin, model.compute_basin())
        assert torch.equal(twin.basin_matcher.current_basin, twin.compute_basin())
        assert torch.equal(restored.basin_matcher.current_basin, model.compute_basin())


def test_a_list_target_says_what_is_expected(make_model):
    with pytest.raises(TypeError, match="expected a tensor or a path"):
        make_model().basin_matcher.set_target_basin([0.0] * 64)  # type: ignore[arg-type]


def test_transfer_warns_with_the_floor_a_narrow_student_cannot_pass(make_model):
    teacher = make_model(seed=0, d_model=96)
    teacher.eval()
    with torch.no_grad():
        target = teacher.compute_basin()
    student = make_model(seed=1, d_model=16)
    with pytest.warns(UserWarning, match=r"d_model=16, basin_dim=64\) cannot reach"):
        stats = transfer_basin(target, student, steps=40, lr=1e-2)
    assert stats["reachable_floor"] > 0.1 * stats["basin_distance_before"]
    assert stats["basin_distance_after"] >= stats["reachable_floor"] * (1 - 1e-5)


def test_a_reachable_target_has_no_floor_and_no_warning(make_model):
    teacher = make_model(seed=0, d_model=96)
    teacher.eval()
    with torch.no_grad():
        target = teacher.compute_basin()
    wide = make_model(seed=1, d_model=96)
    assert reachable_floor(wide.basin_matcher, target) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transfer_basin(target, wide, steps=1)
