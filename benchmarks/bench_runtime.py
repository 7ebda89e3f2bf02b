"""Runtime benchmarks: each vectorised reference against the naive loop it replaces.

    python benchmarks/bench_runtime.py [--quick]

Naive loops that would take minutes at full size are timed on a subset and
scaled per item; the printed ratio is naive time / vectorised time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import Tensor

from qig_guard.runtime import (
    QIGKernelRecursive,
    consolidate_toward_basin,
    estimate_fisher_diag,
    fisher_distance,
    sync_constellation_basins,
)
from qig_guard.runtime.consolidation import basin_jacobian

DIM = 64


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """Shortest wall time of ``repeats`` runs of ``work``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, fast: float, naive: float, note: str) -> None:
    line = f"{name:<34} vectorised {fast * 1e3:10.3f} ms   naive {naive * 1e3:10.3f} ms"
    print(f"{line}   x{naive / fast:8.1f}  {note}")


def bench_fisher_distance(pairs: int, naive_pairs: int) -> None:
    a, b = torch.randn(pairs, DIM), torch.randn(pairs, DIM)
    fisher = torch.rand(DIM) + 0.1
    fast = best_of(3, lambda: fisher_distance(a, b, fisher))

    def naive() -> None:
        for i in range(naive_pairs):
            torch.sqrt((fisher * (a[i] - b[i]) ** 2).sum())

    scaled = best_of(1, naive) * pairs / naive_pairs
    report(f"fisher_distance {pairs:.0e} pairs", fast, scaled, f"(naive on {naive_pairs}, scaled)")


def bench_sync(observers: int) -> None:
    active, ocean = torch.randn(DIM), torch.randn(DIM)
    stacked = torch.randn(observers, DIM)
    listed = list(stacked.unbind(0))
    fast = best_of(5, lambda: sync_constellation_basins(active, stacked, ocean, 0.1))

    def naive() -> list[Tensor]:
        frozen_active = active.detach()
        return [obs + 0.1 * (frozen_active - obs) for obs in listed]

    report(f"sync {observers} observers", fast, best_of(3, naive), "(spec template loop)")


def naive_fisher(model: QIGKernelRecursive, ids: Tensor) -> Tensor:
    """One backward per (sequence, position) through a basin displacement."""
    with torch.no_grad():
        hidden = model.features(ids).hidden
    projection = model.basin_matcher.projection
    total = torch.zeros(DIM, dtype=torch.float64)
    for b in range(ids.shape[0]):
        for t in range(ids.shape[1] - 1):
            delta = torch.zeros(DIM, requires_grad=True)
            logits = model.lm_head(model.norm(hidden[b, t] + delta @ projection))
            (grad,) = torch.autograd.grad(torch.log_softmax(logits, -1)[ids[b, t + 1]], delta)
            total += grad.double() ** 2
    return total / (ids.shape[0] * (ids.shape[1] - 1))


def bench_fisher_estimation(model: QIGKernelRecursive, batch: int, length: int) -> None:
    ids = torch.randint(0, model.config["vocab_size"], (batch, length))
    fast = best_of(3, lambda: estimate_fisher_diag(model, ids))
    naive = best_of(1, lambda: naive_fisher(model, ids))
    report(f"Fisher diag {batch}x{length} tokens", fast, naive, "(per-token backward loop)")


def naive_jacobian(model: QIGKernelRecursive, params: list[torch.nn.Parameter]) -> Tensor:
    rows = []
    for i in range(DIM):
        grads = torch.autograd.grad(model.compute_basin()[i], params, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, params, strict=True)
                ]
            )
        )
    return torch.stack(rows)


def bench_consolidation(model: QIGKernelRecursive) -> None:
    model.eval()
    params = list(model.parameters())
    target = torch.randn(DIM)
    fast = best_of(2, lambda: consolidate_toward_basin(model, target, steps=1))
    jacobian_fast = best_of(2, lambda: basin_jacobian(model.compute_basin(), params))
    jacobian_naive = best_of(1, lambda: naive_jacobian(model, params))
    count = sum(p.numel() for p in params)
    print(f"one consolidation step ({count / 1e6:.2f}M params): {fast:.3f} s in all")
    report("  basin Jacobian (64 rows)", jacobian_fast, jacobian_naive, "(64 backward passes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_fisher_distance(10_000 if args.quick else 1_000_000, 2_000 if args.quick else 20_000)
    bench_sync(1_000 if args.quick else 10_000)
    width = 32 if args.quick else 160
    model = QIGKernelRecursive(
        d_model=width, vocab_size=2048, n_heads=4, min_recursion_depth=2, dropout=0.0
    )
    bench_fisher_estimation(model, 4 if args.quick else 8, 16 if args.quick else 32)
    bench_consolidation(model)


if __name__ == "__main__":
    main()
