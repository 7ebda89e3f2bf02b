"""Sleep consolidation (Gauss-Newton in basin space) and Fisher diagonal estimation."""

from __future__ import annotations

import itertools
import warnings

import pytest

torch = pytest.importorskip("torch")

from qig_guard.basin import save_basin  # noqa: E402
from qig_guard.runtime import consolidate_toward_basin, estimate_fisher_diag  # noqa: E402
from qig_guard.runtime.consolidation import (  # noqa: E402
    _vjp,
    basin_with_graph,
    gram_matrix,
    reaching,
)


def _reachable_target(make_model):
    """The basin of another model of the same architecture: a reachable target."""
    return make_model(seed=7).compute_basin().detach()


def test_consolidation_reduces_the_distance_monotonically(make_model):
    model = make_model()
    model.train()
    stats = consolidate_toward_basin(
        model, _reachable_target(make_model), steps=4, parameters=model.block.parameters()
    )
    history = stats["distance_history"]
    assert all(later < earlier for earlier, later in itertools.pairwise(history))
    assert stats["basin_distance_after"] < 0.7 * stats["basin_distance_before"]
    assert stats["consolidation_improvement"] == pytest.approx(
        stats["basin_distance_before"] - stats["basin_distance_after"]
    )
    assert stats["steps"] == len(history) - 1 >= 1


def test_consolidation_restores_each_module_mode(make_model):
    model = make_model(dropout=0.1)
    model.train()
    model.block.eval()
    consolidate_toward_basin(model, _reachable_target(make_model), steps=1)
    assert model.training and not model.block.training and model.lm_head.training


def test_parameters_outside_the_selection_stay_frozen(make_model):
    model = make_model()
    embedding_before = model.token_embedding.weight.detach().clone()
    block_before = model.block.qkv.weight.detach().clone()
    stats = consolidate_toward_basin(
        model, _reachable_target(make_model), steps=1, parameters=model.block.parameters()
    )
    assert stats["basin_distance_after"] < stats["basin_distance_before"]
    assert stats["steps"] == 1
    assert torch.equal(model.token_embedding.weight, embedding_before)
    assert not torch.equal(model.block.qkv.weight, block_before)


def _dense_jacobian(model, params):
    """Row by row: one backward pass per basin coordinate (the reference)."""
    rows = []
    for i in range(64):
        grads = torch.autograd.grad(model.compute_basin()[i], params, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (torch.zeros_like(p) if g is None else g).reshape(-1)
                    for g, p in zip(grads, params, strict=True)
                ]
            )
        )
    return torch.stack(rows).double()


def test_matrix_free_products_match_the_dense_jacobian(make_model):
    model = make_model()
    model.eval()
    basin = basin_with_graph(model)
    kept = reaching(basin, list(model.parameters()))
    names = {id(p): name for name, p in model.named_parameters()}
    skipped = {name for name, p in model.named_parameters()} - {names[id(p)] for p in kept}
    assert skipped == {"lm_head.weight", "norm.weight", "norm.bias"}
    jacobian = _dense_jacobian(model, kept)
    gram = gram_matrix(basin, kept)
    expected = jacobian @ jacobian.T
    assert torch.allclose(gram, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    weights = torch.randn(64)
    transposed = torch.cat([g.reshape(-1) for g in _vjp(basin, kept, weights, keep=False)])
    assert torch.allclose(transposed.double(), jacobian.T @ weights.double(), atol=1e-5)


def test_parameters_keep_their_storage_and_aliases_see_the_update(make_model):
    model = make_model()
    pointers = [p.data_ptr() for p in model.parameters()]
    alias = model.block.qkv.weight.view(-1)  # e.g. an EMA helper holding a view
    before = alias.clone()
    consolidate_toward_basin(model, _reachable_target(make_model), steps=1)
    assert [p.data_ptr() for p in model.parameters()] == pointers
    assert not torch.equal(alias, before)
    assert torch.equal(alias, model.block.qkv.weight.view(-1))


def test_stats_give_the_stop_reason_and_the_time(make_model):
    model = make_model()
    target = _reachable_target(make_model)
    stats = consolidate_toward_basin(model, target, steps=2)
    assert stats["stop_reason"] == "max_steps" and stats["steps"] == 2
    assert stats["seconds"] > 0
    loose = consolidate_toward_basin(model, target, steps=50, tolerance=1e9)
    assert loose["stop_reason"] == "converged" and loose["steps"] == 0
    # A target off the reachable set: progress stalls and line search gives up.
    stuck = consolidate_toward_basin(
        model, torch.full((64,), 50.0), steps=50, parameters=[model.block.out.bias], max_halvings=2
    )
    assert stuck["stop_reason"] == "line_search_failed" and stuck["steps"] < 50


def test_the_spec_lr_warns_and_does_not_shrink_the_step(make_model):
    target = _reachable_target(make_model)
    plain = consolidate_toward_basin(make_model(), target, steps=1)
    with pytest.warns(UserWarning, match="lr=0.0001 is ignored"):
        spec = consolidate_toward_basin(make_model(), target, steps=1, lr=0.0001)
    assert spec["basin_distance_after"] == pytest.approx(plain["basin_distance_after"])
    assert spec["consolidation_improvement"] > 100 * 0.0001
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        half = consolidate_toward_basin(make_model(), target, steps=1, step_fraction=0.5)
    assert half["basin_distance_after"] > plain["basin_distance_after"]


def test_a_basin_file_is_accepted_as_the_target(tmp_path, make_model):
    target = _reachable_target(make_model)
    path = save_basin(
        tmp_path / "t.json", target.double().tolist(), source_model="t", extracted_from="test"
    )
    from_file = consolidate_toward_basin(make_model(), path, steps=1)
    from_tensor = consolidate_toward_basin(make_model(), target, steps=1)
    assert from_file["basin_distance_after"] == pytest.approx(from_tensor["basin_distance_after"])


def test_consolidation_rejects_a_malformed_target(make_model):
    with pytest.raises(ValueError, match="target basin"):
        consolidate_toward_basin(make_model(), torch.zeros(10))


@pytest.mark.parametrize("estimator", ["empirical", "true_mc"])
def test_fisher_estimate_matches_per_sample_gradients(make_model, estimator):
    model = make_model()
    ids = torch.randint(0, 40, (3, 6))
    generator = torch.Generator().manual_seed(3)
    fisher = estimate_fisher_diag(model, ids, estimator=estimator, floor=1e-30, generator=generator)
    assert fisher.shape == (64,) and fisher.dtype == torch.float64
    # Reference: one backward per (sequence, position) through a basin displacement delta.
    model.eval()
    hidden = model.features(ids).hidden.detach()
    if estimator == "empirical":
        labels = ids[:, 1:]
    else:
        probs = torch.softmax(model.lm_head(model.norm(hidden[:, :-1])), dim=-1).reshape(-1, 40)
        labels = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(3))
        labels = labels.reshape(3, 5)
    squares = torch.zeros(64, dtype=torch.float64)
    projection = model.basin_matcher.projection
    for b in range(3):
        for t in range(5):
            delta = torch.zeros(64, requires_grad=True)
            shifted = hidden[b, t] + delta @ projection
            log_p = torch.log_softmax(model.lm_head(model.norm(shifted)), dim=-1)[labels[b, t]]
            (grad,) = torch.autograd.grad(log_p, delta)
            squares += grad.double() ** 2
    assert torch.allclose(fisher, squares / 15, rtol=1e-4, atol=1e-12)


def test_exact_true_fisher_is_the_expectation_over_every_label(make_model, monkeypatch):
    monkeypatch.setattr("qig_guard.runtime.fisher._TRUE_CHUNK_ELEMENTS", 64 * 40 * 2)
    model = make_model()
    model.eval()
    ids = torch.randint(0, 40, (2, 4))
    fisher = estimate_fisher_diag(model, ids, estimator="true", floor=1e-30)
    hidden = model.features(ids).hidden.detach()[:, :-1].reshape(-1, 32)
    projection = model.basin_matcher.projection
    expected = torch.zeros(64, dtype=torch.float64)
    for token in hidden:
        delta = torch.zeros(64, requires_grad=True)
        log_p = torch.log_softmax(model.lm_head(model.norm(token + delta @ projection)), dim=-1)
        for label in range(40):
            (grad,) = torch.autograd.grad(log_p[label], delta, retain_graph=True)
            expected += log_p[label].exp().item() * grad.double() ** 2
    assert torch.allclose(fisher, expected / len(hidden), rtol=1e-4, atol=1e-12)


def test_fisher_estimate_can_become_the_metric(make_model):
    model = make_model()
    fisher = estimate_fisher_diag(model, install=True)
    assert torch.equal(model.fisher_diag, fisher.to(model.fisher_diag.dtype))
    fields = model.basin_matcher.fisher_fields()
    assert fields["fisher_estimator"] == "empirical" and fields["fisher_samples"] == 4 * 7


def test_fisher_estimator_name_is_checked(make_model):
    with pytest.raises(ValueError, match="estimator"):
        estimate_fisher_diag(make_model(), estimator="fisher")  # type: ignore[arg-type]
