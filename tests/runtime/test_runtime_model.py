"""QIGKernelRecursive and BasinMatcher: telemetry, recursion, target validation, state."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from qig_guard.basin import BasinFileError, save_basin  # noqa: E402
from qig_guard.runtime import (  # noqa: E402
    BasinMatcher,
    initialize_with_basin,
    load_checkpoint_state,
)
from qig_guard.runtime.model import integration, regime_of  # noqa: E402


def test_forward_returns_logits_and_telemetry(make_model):
    model = make_model(min_recursion_depth=2, max_recursion_depth=3, min_Phi=0.0)
    ids = torch.randint(0, 40, (3, 10))
    logits, telemetry = model(ids)
    assert logits.shape == (3, 10, 40)
    assert telemetry["recursion_depth"] == 2  # min_Phi 0 is met at once: stop at the minimum
    assert 0.0 <= telemetry["Phi"] <= 1.0
    assert telemetry["regime"] == regime_of(telemetry["Phi"])
    assert telemetry["basin_distance"] is None


def test_recursion_continues_until_min_phi_or_the_cap(make_model):
    model = make_model(min_recursion_depth=1, max_recursion_depth=4, min_Phi=1.0)
    _, telemetry = model(torch.randint(0, 40, (2, 6)))
    assert telemetry["recursion_depth"] == 4


def test_phi_is_one_for_identical_tokens_and_small_for_opposed_ones():
    same = torch.randn(1, 1, 16).expand(1, 5, 16)
    assert float(integration(same)) == pytest.approx(1.0, rel=1e-5)
    vector = torch.randn(16)
    opposed = torch.stack([vector, -vector]).unsqueeze(0)
    assert float(integration(opposed)) == pytest.approx(0.0, abs=1e-6)


def test_basin_is_differentiable_in_the_parameters(make_model):
    model = make_model()
    basin = model.compute_basin()
    assert basin.shape == (64,)
    basin.sum().backward()
    assert model.token_embedding.weight.grad is not None
    assert float(model.token_embedding.weight.grad.abs().sum()) > 0


def test_target_is_validated_and_survives_a_checkpoint_round_trip(tmp_path, make_model):
    model = make_model()
    target = torch.randn(64)
    model.basin_matcher.set_target_basin(target)
    _, telemetry = model(torch.randint(0, 40, (2, 5)))
    assert telemetry["basin_distance"] is not None and telemetry["basin_distance"] > 0
    torch.save(model.state_dict(), tmp_path / "model.pt")
    restored = make_model(seed=1)
    restored.load_state_dict(load_checkpoint_state(tmp_path / "model.pt"))
    assert torch.equal(restored.basin_matcher.target_basin, target)
    assert bool(restored.basin_matcher.has_target)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(63), torch.zeros(64, dtype=torch.long), torch.full((64,), float("nan"))],
    ids=["shape", "dtype", "nan"],
)
def test_set_target_basin_rejects_invalid_tensors(make_model, bad):
    with pytest.raises(ValueError, match="target basin"):
        make_model().basin_matcher.set_target_basin(bad)


def test_direct_assignment_of_the_target_is_refused_at_runtime(make_model):
    matcher = make_model().basin_matcher
    attribute = "target_basin"
    with pytest.raises(AttributeError, match="set_target_basin"):
        setattr(matcher, attribute, torch.zeros(64))  # a dynamic write no static rule sees


def test_target_loads_from_a_basin_file_with_its_metric(tmp_path):
    basin = [0.01 * i for i in range(64)]
    fisher = [1.0 + i for i in range(64)]
    path = save_basin(
        tmp_path / "a.json",
        basin,
        source_model="teacher",
        extracted_from="test",
        fisher_diag=fisher,
        fisher_estimator="empirical",
        fisher_samples=10,
    )
    matcher = BasinMatcher(16, 10, target_basin=path)
    assert matcher.target_basin.tolist() == pytest.approx(basin)
    assert matcher.fisher_diag.tolist() == pytest.approx(fisher)
    assert int(matcher.fisher_samples) == 10


def test_a_malformed_basin_file_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"basin": [1, 2], "dim": 2}')
    with pytest.raises(BasinFileError):
        BasinMatcher(16, 10, target_basin=path)


def test_initialize_with_basin_has_random_parameters_and_the_target(tmp_path):
    path = save_basin(tmp_path / "t.json", [0.5] * 64, source_model="A", extracted_from="test")
    torch.manual_seed(0)
    first = initialize_with_basin(40, path, d_model=32, n_heads=2, max_seq_len=32)
    second = initialize_with_basin(40, path, d_model=32, n_heads=2, max_seq_len=32)
    assert first.min_recursion_depth == 3 and first.min_Phi == 0.7
    assert torch.equal(first.basin_matcher.target_basin, torch.full((64,), 0.5))
    assert not torch.equal(first.token_embedding.weight, second.token_embedding.weight)
