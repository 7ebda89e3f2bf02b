"""Property tests for the Fisher geometry (hypothesis, tensors built from float lists)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qig_guard.runtime import (  # noqa: E402
    fisher_distance,
    fisher_geodesic,
    fisher_rao_distance,
    fisher_rao_geodesic,
)

DIM = 8
coordinate = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=64)
positive = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
weight = st.floats(1e-6, 1.0, allow_nan=False)


def vectors(elements: st.SearchStrategy[float], dim: int = DIM) -> st.SearchStrategy[object]:
    return st.lists(elements, min_size=dim, max_size=dim).map(
        lambda xs: torch.tensor(xs, dtype=torch.float64)
    )


def distributions(dim: int = DIM) -> st.SearchStrategy[object]:
    return vectors(weight, dim).map(lambda w: w / w.sum())


property_settings = settings(max_examples=40, deadline=None)


@property_settings
@given(vectors(coordinate), vectors(coordinate), vectors(coordinate), vectors(positive))
def test_fisher_distance_is_a_metric(a, b, c, fisher):
    assert float(fisher_distance(a, a, fisher)) == 0.0
    assert float(fisher_distance(a, b, fisher)) == float(fisher_distance(b, a, fisher))
    ab, bc, ac = (fisher_distance(x, y, fisher) for x, y in ((a, b), (b, c), (a, c)))
    assert float(ac) <= float(ab + bc) * (1 + 1e-12) + 1e-12


@property_settings
@given(vectors(coordinate), vectors(coordinate), vectors(positive), vectors(positive))
def test_fisher_distance_is_invariant_under_diagonal_rescaling(a, b, fisher, scale):
    # Coordinates x -> s x pull the metric back to F / s^2: the distance is unchanged.
    rescaled = fisher_distance(a * scale, b * scale, fisher / scale**2)
    assert float(rescaled) == pytest.approx(float(fisher_distance(a, b, fisher)), rel=1e-9)


@property_settings
@given(vectors(coordinate), vectors(coordinate), vectors(coordinate), vectors(positive))
def test_fisher_distance_is_translation_and_permutation_invariant(a, b, shift, fisher):
    base = float(fisher_distance(a, b, fisher))
    assert float(fisher_distance(a + shift, b + shift, fisher)) == pytest.approx(base, rel=1e-9)
    order = torch.randperm(DIM)
    permuted = fisher_distance(a[order], b[order], fisher[order])
    assert float(permuted) == pytest.approx(base, rel=1e-9)


@property_settings
@given(vectors(coordinate), vectors(coordinate), vectors(positive), st.floats(0, 1))
def test_fisher_geodesic_splits_the_distance(a, b, fisher, t):
    point = fisher_geodesic(a, b, t)
    total = float(fisher_distance(a, b, fisher))
    assert float(fisher_distance(a, point, fisher)) == pytest.approx(t * total, abs=1e-7)
    assert float(fisher_distance(point, b, fisher)) == pytest.approx((1 - t) * total, abs=1e-7)


def test_fisher_distance_batches_over_leading_dimensions():
    a, b = torch.randn(3, 5, 64), torch.randn(3, 5, 64)
    fisher = torch.rand(64) + 0.5
    batched = fisher_distance(a, b, fisher)
    assert batched.shape == (3, 5)
    assert float(batched[2, 4]) == pytest.approx(float(fisher_distance(a[2, 4], b[2, 4], fisher)))
    expected = math.sqrt(float((fisher * (a[0, 0] - b[0, 0]).double() ** 2).sum()))
    assert float(batched[0, 0]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_fisher_distance_rejects_a_non_positive_metric(bad):
    fisher = torch.ones(4)
    fisher[2] = bad
    with pytest.raises(ValueError, match="fisher_diag"):
        fisher_distance(torch.zeros(4), torch.ones(4), fisher)


def test_fisher_distance_gradient_is_finite_at_equality():
    a = torch.randn(64, requires_grad=True)
    fisher_distance(a, a.detach(), torch.ones(64)).backward()
    assert a.grad is not None and bool(torch.all(a.grad == 0))


def test_near_neighbours_in_float32_keep_their_distance():
    a = torch.full((64,), 0.25)
    b = a.clone()
    b[0] += 1e-6
    gap = float(b[0]) - float(a[0])  # the float32 spacing near 0.25, about 1e-6
    assert float(fisher_distance(a, b, torch.ones(64))) == pytest.approx(gap, rel=1e-6)
    p = torch.tensor([0.3, 0.7])
    q = torch.tensor([0.3001, 0.6999])
    exact = 2 * math.acos(math.sqrt(0.3 * 0.3001) + math.sqrt(0.7 * 0.6999))
    assert float(2 * torch.acos((p * q).sqrt().sum())) == 0.0  # the naive form collapses
    assert float(fisher_rao_distance(p, q)) == pytest.approx(exact, rel=1e-3)


@property_settings
@given(distributions(), distributions(), distributions())
def test_fisher_rao_distance_is_a_metric_on_the_simplex(p, q, r):
    assert float(fisher_rao_distance(p, p)) == 0.0
    pq = float(fisher_rao_distance(p, q))
    assert pq == float(fisher_rao_distance(q, p))
    assert 0.0 <= pq <= math.pi + 1e-12
    assert float(fisher_rao_distance(p, r)) <= pq + float(fisher_rao_distance(q, r)) + 1e-9


@property_settings
@given(distributions(), distributions(), st.floats(0.01, 0.99))
def test_fisher_rao_is_invariant_under_markov_splitting(p, q, share):
    # Chentsov: splitting a category in the same proportion in both preserves the distance.
    split_p = torch.cat([p[:1] * share, p[:1] * (1 - share), p[1:]])
    split_q = torch.cat([q[:1] * share, q[:1] * (1 - share), q[1:]])
    assert float(fisher_rao_distance(split_p, split_q)) == pytest.approx(
        float(fisher_rao_distance(p, q)), abs=1e-9
    )


@property_settings
@given(distributions(), distributions(), st.floats(0, 1))
def test_fisher_rao_geodesic_splits_the_distance(p, q, t):
    point = fisher_rao_geodesic(p, q, t)
    assert float(point.sum()) == pytest.approx(1.0)
    total = float(fisher_rao_distance(p, q))
    assert float(fisher_rao_distance(p, point)) == pytest.approx(t * total, abs=1e-6)
    assert float(fisher_rao_distance(point, q)) == pytest.approx((1 - t) * total, abs=1e-6)


def test_fisher_rao_gradient_is_finite_at_equality():
    logits = torch.randn(5, requires_grad=True)
    p = torch.softmax(logits, dim=0)
    fisher_rao_distance(p, p.detach()).backward()
    assert logits.grad is not None and bool(torch.all(torch.isfinite(logits.grad)))


def test_fisher_rao_rejects_negative_probabilities():
    with pytest.raises(ValueError, match="non-negative"):
        fisher_rao_distance(torch.tensor([1.2, -0.2]), torch.tensor([0.5, 0.5]))
