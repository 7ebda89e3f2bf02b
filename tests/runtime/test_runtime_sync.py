"""Constellation sync: contraction, a frozen Ocean, detached active, vectorised forms."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qig_guard.runtime import fisher_distance, sync_constellation_basins  # noqa: E402

DIM = 6
finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
vector = st.lists(finite, min_size=DIM, max_size=DIM).map(
    lambda xs: torch.tensor(xs, dtype=torch.float64)
)
metric = st.lists(st.floats(1e-2, 1e2), min_size=DIM, max_size=DIM).map(
    lambda xs: torch.tensor(xs, dtype=torch.float64)
)


@settings(max_examples=40, deadline=None)
@given(vector, st.lists(vector, min_size=1, max_size=5), metric, st.floats(0.05, 0.1))
def test_sync_contracts_every_distance_to_the_active_basin(active, observers, fisher, w):
    _, moved = sync_constellation_basins(active, observers, torch.zeros(DIM), w)
    for old, new in zip(observers, moved, strict=True):
        before = float(fisher_distance(old, active, fisher))
        after = float(fisher_distance(new, active, fisher))
        assert after == pytest.approx((1 - w) * before, rel=1e-9, abs=1e-9)


def test_ocean_is_detached_cloned_and_unchanged():
    ocean = torch.randn(DIM, requires_grad=True)
    original = ocean.detach().clone()
    result, _ = sync_constellation_basins(torch.randn(DIM), [torch.randn(DIM)], ocean)
    assert not result.requires_grad
    assert result.data_ptr() != ocean.data_ptr()
    assert torch.equal(ocean.detach(), original) and torch.equal(result, original)


def test_active_gets_no_gradient_and_observers_keep_theirs():
    active = torch.randn(DIM, requires_grad=True)
    observer = torch.randn(DIM, requires_grad=True)
    _, (moved,) = sync_constellation_basins(active, [observer], torch.zeros(DIM))
    moved.sum().backward()
    assert active.grad is None
    assert observer.grad is not None and torch.allclose(observer.grad, torch.full((DIM,), 0.9))


def test_stacked_observers_match_the_list_form():
    active, ocean = torch.randn(DIM), torch.randn(DIM)
    stacked = torch.randn(100, DIM)
    _, as_tensor = sync_constellation_basins(active, stacked, ocean, 0.07)
    _, as_list = sync_constellation_basins(active, list(stacked), ocean, 0.07)
    assert isinstance(as_tensor, torch.Tensor) and isinstance(as_list, list)
    assert torch.allclose(as_tensor, torch.stack(as_list))


@pytest.mark.parametrize("weight", [0.0, 0.2, 1.0])
def test_sync_weight_outside_the_configured_range_is_refused(weight):
    with pytest.raises(ValueError, match="range"):
        sync_constellation_basins(torch.zeros(DIM), [torch.ones(DIM)], torch.zeros(DIM), weight)


def test_sync_weight_range_is_configurable():
    _, (moved,) = sync_constellation_basins(
        torch.ones(DIM), [torch.zeros(DIM)], torch.zeros(DIM), 0.5, sync_weight_range=(0.0, 0.5)
    )
    assert torch.allclose(moved, torch.full((DIM,), 0.5))


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="observers"):
        sync_constellation_basins(torch.zeros(DIM), torch.zeros(3, DIM + 1), torch.zeros(DIM))
