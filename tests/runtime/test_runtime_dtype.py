"""Dtype policy: half-precision models keep float32 metric buffers, lazy telemetry, no float64
off the CPU."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from qig_guard.runtime import fisher_distance  # noqa: E402
from qig_guard.runtime.geometry import wide_dtype  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_casting_the_model_keeps_target_and_metric_in_float32(make_model, dtype):
    model = make_model()
    model.basin_matcher.set_target_basin(torch.randn(64))
    model.basin_matcher.set_fisher_diag(torch.full((64,), 1e5), "empirical", 4)  # > 65,504
    model.to(dtype)
    matcher = model.basin_matcher
    assert model.lm_head.weight.dtype == dtype
    assert matcher.target_basin.dtype == torch.float32
    assert matcher.fisher_diag.dtype == torch.float32
    assert bool(torch.all(torch.isfinite(matcher.fisher_diag)))
    model.eval()
    _, telemetry = model(torch.randint(0, 40, (2, 6)))
    assert telemetry["basin_distance"] is not None and telemetry["basin_distance"] > 0
    with torch.no_grad():
        assert model.compute_basin().dtype == torch.float32  # accumulated in float32
    model.double()
    assert matcher.fisher_diag.dtype == torch.float64


def test_telemetry_is_computed_when_read_not_in_forward(make_model, monkeypatch):
    model = make_model()
    model.basin_matcher.set_target_basin(torch.randn(64))
    calls = []
    original = type(model.basin_matcher).basin_distance

    def counting(self, basin):
        calls.append(1)
        return original(self, basin)

    monkeypatch.setattr(type(model.basin_matcher), "basin_distance", counting)
    _, telemetry = model(torch.randint(0, 40, (2, 6)))
    assert calls == []
    assert set(telemetry) == {"Phi", "recursion_depth", "regime", "basin_distance"}
    first = telemetry["basin_distance"]
    assert telemetry["basin_distance"] == first and calls == [1]
    assert dict(telemetry)["Phi"] == telemetry["Phi"]


def test_fisher_distance_keeps_the_input_dtype_with_float32_accumulation():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 100, 64, generator=generator)
    fisher = torch.rand(64, generator=generator) + 0.1
    exact = (fisher.double() * (a.double() - b.double()) ** 2).sum(-1).sqrt()
    single = fisher_distance(a, b, fisher)
    assert single.dtype == torch.float32
    assert torch.allclose(single.double(), exact, rtol=1e-6)
    half = fisher_distance(a.half(), b.half(), fisher)
    assert half.dtype == torch.float16
    assert torch.allclose(half.double(), exact, rtol=2e-3)
    assert torch.allclose(fisher_distance(a.double(), b.double(), fisher.double()), exact)


def test_the_gradient_is_zero_not_nan_where_the_basins_meet():
    a = torch.randn(3, 64, requires_grad=True)
    fisher_distance(a, a.detach().clone(), torch.ones(64)).sum().backward()
    assert torch.equal(a.grad, torch.zeros_like(a))


def test_float64_is_used_only_on_the_cpu_or_when_asked():
    assert wide_dtype(torch.zeros(1)) == torch.float64
    assert wide_dtype(torch.zeros(1, device="meta")) == torch.float32  # e.g. MPS, CUDA
    assert wide_dtype(torch.zeros(1, device="meta", dtype=torch.float64)) == torch.float64
