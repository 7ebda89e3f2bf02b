"""Runtime benchmarks against what a user would write, and consolidation memory at scale.

    python benchmarks/bench_runtime.py [--quick] [--sizes small,medium,large,spec]
                                       [--dense-limit PARAMS] [--skip-consolidation]
                                       [--threads N]

One torch thread by default, so that numbers on a shared machine are comparable.

``fisher_distance`` is compared with the vectorised float32 one-liner a user would
write (``torch.sqrt((F * (a - b) ** 2).sum(-1))``), with the float64 version this
package used before, and with a Python loop (timed on a subset and scaled).

Consolidation: each (size, method) runs one step in a fresh process; peak extra
memory is the highest resident set size sampled every 2 ms during the step minus
the resident size just before it (model built, one forward done); ``ru_maxrss``
is not used, as Linux carries it over from the parent process across exec. ``dense`` is the
previous implementation, kept here as the baseline: the 64 x P Jacobian from one
batched backward, ``J J^T`` by matrix product, steps through ``parameters_to_vector``.
It is skipped above ``--dense-limit`` parameters (its Jacobian alone is 256 bytes
per parameter). ``spec`` is the spec's model (d_model 768, vocabulary 50,257).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from qig_guard.runtime import (
    QIGKernelRecursive,
    consolidate_toward_basin,
    estimate_fisher_diag,
    fisher_distance,
    sync_constellation_basins,
)

DIM = 64
SIZES: dict[str, dict[str, Any]] = {
    "small": {"d_model": 160, "vocab_size": 2048, "n_heads": 4},
    "medium": {"d_model": 384, "vocab_size": 4096, "n_heads": 6},
    "large": {"d_model": 512, "vocab_size": 10240, "n_heads": 8},
    "spec": {"d_model": 768, "vocab_size": 50257, "n_heads": 6},
}


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """Shortest wall time of ``repeats`` runs of ``work``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, fast: float, other: float, note: str) -> None:
    line = f"{name:<40} qig-guard {fast * 1e3:9.2f} ms   other {other * 1e3:10.2f} ms"
    print(f"{line}   x{other / fast:7.2f}  {note}")


def bench_fisher_distance(pairs: int, naive_pairs: int) -> None:
    a, b = torch.randn(pairs, DIM), torch.randn(pairs, DIM)
    fisher = torch.rand(DIM) + 0.1
    ours = best_of(5, lambda: fisher_distance(a, b, fisher))
    one_liner = best_of(5, lambda: torch.sqrt((fisher * (a - b) ** 2).sum(-1)))
    report(f"fisher_distance {pairs:.0e} pairs f32", ours, one_liner, "(float32 one-liner)")
    previous = best_of(
        5, lambda: (fisher.double() * (a.double() - b.double()) ** 2).sum(-1).sqrt().float()
    )
    report(f"fisher_distance {pairs:.0e} pairs f32", ours, previous, "(float64, as before)")
    a64, b64, fisher64 = a.double(), b.double(), fisher.double()
    ours64 = best_of(5, lambda: fisher_distance(a64, b64, fisher64))
    one_liner64 = best_of(5, lambda: torch.sqrt((fisher64 * (a64 - b64) ** 2).sum(-1)))
    report(f"fisher_distance {pairs:.0e} pairs f64", ours64, one_liner64, "(float64 one-liner)")

    def naive() -> None:
        for i in range(naive_pairs):
            torch.sqrt((fisher * (a[i] - b[i]) ** 2).sum())

    scaled = best_of(1, naive) * pairs / naive_pairs
    report(f"fisher_distance {pairs:.0e} pairs f32", ours, scaled, f"(loop on {naive_pairs})")


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


def bench_fisher_estimation(batch: int, length: int, width: int) -> None:
    model = QIGKernelRecursive(
        d_model=width, vocab_size=2048, n_heads=4, min_recursion_depth=2, dropout=0.0
    )
    ids = torch.randint(0, 2048, (batch, length))
    fast = best_of(3, lambda: estimate_fisher_diag(model, ids))
    naive = best_of(1, lambda: naive_fisher(model, ids))
    report(f"Fisher diag {batch}x{length} tokens", fast, naive, "(per-token backward loop)")


# --- consolidation: the previous, dense implementation as the baseline --------------------


def dense_step(model: QIGKernelRecursive, target: Tensor) -> None:
    """One step of the previous implementation: materialised Jacobian, flat vectors."""
    params = [p for p in model.parameters() if p.requires_grad]
    fisher = model.fisher_diag
    with torch.no_grad():
        before = float(fisher_distance(model.compute_basin(), target, fisher))
    basin = model.compute_basin()
    eye = torch.eye(DIM, dtype=basin.dtype)
    grads = torch.autograd.grad(
        basin, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True
    )
    jacobian = torch.cat(
        [
            (torch.zeros(DIM, *p.shape, dtype=p.dtype) if g is None else g).reshape(DIM, -1)
            for g, p in zip(grads, params, strict=True)
        ],
        dim=1,
    )
    del grads
    system = fisher.double().unsqueeze(1) * (jacobian @ jacobian.T).double()
    lam = 1e-3 * float(system.diagonal().mean())
    system = system + lam * torch.eye(DIM, dtype=torch.float64)
    residual = (basin.detach() - target).double()
    solution = torch.linalg.solve(system, fisher.double() * residual)
    direction = -(jacobian.T @ solution.to(jacobian.dtype))
    start = parameters_to_vector(params).detach()
    eta = 1.0
    for _ in range(12):
        with torch.no_grad():
            vector_to_parameters(start + eta * direction, params)
            if float(fisher_distance(model.compute_basin(), target, fisher)) < before:
                return
        eta /= 2


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(work: Callable[[], object]) -> tuple[float, int]:
    """Seconds and peak extra resident bytes of ``work`` (sampled every 2 ms)."""
    baseline = _rss_bytes()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak = max(peak, _rss_bytes())
    return seconds, peak - baseline


def consolidation_child(size: str, method: str) -> dict[str, Any]:
    """Build the model of ``size`` and measure one consolidation step by ``method``."""
    torch.manual_seed(0)
    model = QIGKernelRecursive(**SIZES[size], dropout=0.0)
    model.eval()
    with torch.no_grad():
        target = model.compute_basin() + 0.05 * torch.randn(DIM)
    if method == "dense":
        seconds, extra = measure(lambda: dense_step(model, target))
    else:
        seconds, extra = measure(lambda: consolidate_toward_basin(model, target, steps=1))
    params = sum(p.numel() for p in model.parameters())
    return {"size": size, "method": method, "params": params, "seconds": seconds, "extra": extra}


def bench_consolidation(sizes: list[str], dense_limit: int, threads: int) -> None:
    print("\nconsolidation, one step (fresh process each):")
    print(f"{'size':<8} {'params':>8}  {'method':<12} {'peak extra':>12} {'time':>9}")
    for size in sizes:
        for method in ("dense", "matrix-free"):
            config = SIZES[size]
            estimate = 2 * config["vocab_size"] * config["d_model"] + 12 * config["d_model"] ** 2
            if method == "dense" and estimate > dense_limit:
                jacobian = DIM * estimate * 4 / 1024**3
                skipped = f"not run (J alone ~{jacobian:.1f} GiB)"
                print(f"{size:<8} {estimate / 1e6:7.1f}M  {method:<12} {skipped}")
                continue
            child = subprocess.run(
                [sys.executable, __file__, "--child", size, method, "--threads", str(threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"{size:<8} {row['params'] / 1e6:7.2f}M  {method:<12} "
                f"{row['extra'] / 1024**2:9.0f} MiB {row['seconds']:8.2f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--sizes", default=None, help="comma-separated: small,medium,large,spec")
    parser.add_argument("--dense-limit", type=int, default=20_000_000, help="max params for dense")
    parser.add_argument("--skip-consolidation", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(consolidation_child(*args.child)))
        return
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_fisher_distance(10_000 if args.quick else 1_000_000, 2_000 if args.quick else 20_000)
    bench_sync(1_000 if args.quick else 10_000)
    bench_fisher_estimation(
        4 if args.quick else 8, 16 if args.quick else 32, 32 if args.quick else 160
    )
    if not args.skip_consolidation:
        default = "small" if args.quick else "small,medium,large,spec"
        sizes = (args.sizes or default).split(",")
        bench_consolidation(sizes, args.dense_limit, args.threads)


if __name__ == "__main__":
    main()
