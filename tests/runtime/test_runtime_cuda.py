"""The runtime on a CUDA device: same answers as on the CPU (skipped without a GPU)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from qig_guard.runtime import (  # noqa: E402
    QIGKernelRecursive,
    consolidate_toward_basin,
    estimate_fisher_diag,
    fisher_distance,
    fisher_rao_distance,
    frozen,
    sync_constellation_basins,
    transfer_basin,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _model(seed: int, d_model: int = 32) -> QIGKernelRecursive:
    torch.manual_seed(seed)
    return QIGKernelRecursive(d_model=d_model, vocab_size=97, n_heads=4, min_recursion_depth=2)


def test_distances_match_the_cpu() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4096, 64, generator=generator)
    fisher = torch.rand(64, generator=generator) + 0.1
    on_cpu = fisher_distance(a, b, fisher)
    on_gpu = fisher_distance(a.to(CUDA), b.to(CUDA), fisher.to(CUDA))
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu)
    p, q = torch.softmax(a, -1), torch.softmax(b, -1)
    torch.testing.assert_close(
        fisher_rao_distance(p.to(CUDA), q.to(CUDA)).cpu(), fisher_rao_distance(p, q)
    )


def test_sync_on_device_keeps_ocean_detached() -> None:
    active = torch.randn(64, device=CUDA, requires_grad=True)
    observers = torch.randn(1000, 64, device=CUDA)
    ocean = torch.randn(64, device=CUDA, requires_grad=True)
    ocean_out, updated = sync_constellation_basins(active, observers, ocean, sync_weight=0.1)
    assert not ocean_out.requires_grad and ocean_out.device.type == "cuda"
    assert not updated.requires_grad
    before = (observers - active.detach()).norm(dim=-1)
    after = (updated - active.detach()).norm(dim=-1)
    torch.testing.assert_close(after, 0.9 * before)


def test_consolidation_and_transfer_on_device() -> None:
    teacher = _model(0).to(CUDA)
    with torch.no_grad():
        target = teacher.compute_basin().detach()
    student = _model(1, d_model=48).to(CUDA)
    student.eval()
    estimate_fisher_diag(student, install=True)
    stats = consolidate_toward_basin(student, target, steps=3)
    assert stats["basin_distance_after"] < stats["basin_distance_before"]
    assert not student.training
    moved = transfer_basin(target, _model(2, d_model=24).to(CUDA), steps=30)
    assert moved["basin_distance_after"] < moved["basin_distance_before"]


def test_frozen_guard_on_device() -> None:
    ocean = _model(3).to(CUDA)
    optimizer = torch.optim.SGD(ocean.parameters(), lr=0.1)  # noqa: QIG003 - the guard must catch it
    with pytest.raises(Exception, match=r"(?i)frozen"), frozen(ocean):
        logits, _ = ocean(torch.randint(0, 97, (2, 8), device=CUDA))
        logits.sum().backward()
        optimizer.step()


def test_half_precision_model_on_device_keeps_float32_metric_and_storage() -> None:
    model = _model(4).to(CUDA)
    model.basin_matcher.set_fisher_diag(torch.full((64,), 1e5), "empirical", 4)
    model.half().eval()
    assert model.basin_matcher.fisher_diag.dtype == torch.float32
    with torch.no_grad():
        target = _model(5).to(CUDA).half().eval().compute_basin()
    pointers = [p.data_ptr() for p in model.parameters()]
    stats = consolidate_toward_basin(model, target, steps=2)
    assert stats["basin_distance_after"] < stats["basin_distance_before"]
    assert [p.data_ptr() for p in model.parameters()] == pointers
    _, telemetry = model(torch.randint(0, 97, (2, 8), device=CUDA))
    assert telemetry["Phi"] >= 0.0


def test_no_float64_off_the_cpu() -> None:
    p = torch.softmax(torch.randn(8, 64, device=CUDA), -1)
    q = torch.softmax(torch.randn(8, 64, device=CUDA), -1)
    assert fisher_rao_distance(p, q).dtype == torch.float32
    model = _model(6).to(CUDA)
    assert estimate_fisher_diag(model).dtype == torch.float32
