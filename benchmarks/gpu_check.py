"""The prepared GPU check: one script, under five minutes on one CUDA device.

    python benchmarks/gpu_check.py [--skip-dense]

1. the CUDA tests (``tests/runtime/test_runtime_cuda.py``);
2. one consolidation step at the spec's size (d_model 768, vocabulary 50,257) with
   peak device memory, matrix-free and (unless ``--skip-dense``) the previous dense
   implementation from ``bench_runtime.py`` for comparison;
3. batched gradients (``is_grads_batched``) through each fused attention kernel:
   whether the batched backward works natively, falls back to a per-sample loop
   (PyTorch warns that a batching rule is missing) or fails.

Without CUDA it prints why and exits 0. Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from qig_guard.runtime import QIGKernelRecursive, consolidate_toward_basin

ROOT = Path(__file__).resolve().parents[1]
SPEC: dict[str, Any] = {"d_model": 768, "vocab_size": 50257, "n_heads": 6, "dropout": 0.0}


def cuda_tests() -> bool:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command.append(str(ROOT / "tests" / "runtime" / "test_runtime_cuda.py"))
    result = subprocess.run(command, cwd=ROOT, timeout=150, check=False)
    print(f"CUDA tests: exit {result.returncode}")
    return result.returncode == 0


def _peak_step(name: str, step: Callable[[], object]) -> None:
    device = torch.device("cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    start = time.perf_counter()
    try:
        step()
    except torch.cuda.OutOfMemoryError as error:
        print(f"  {name:<12} out of memory: {str(error).splitlines()[0]}")
        return
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    extra = (torch.cuda.max_memory_allocated(device) - baseline) / 1024**3
    print(f"  {name:<12} peak extra {extra:7.2f} GiB   {seconds:7.2f} s")


def spec_consolidation(skip_dense: bool) -> None:
    torch.manual_seed(0)
    model = QIGKernelRecursive(**SPEC).cuda().eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        target = model.compute_basin() + 0.05 * torch.randn(64, device="cuda")
    print(f"consolidation, one step, spec size ({params / 1e6:.1f}M parameters):")
    _peak_step("matrix-free", lambda: consolidate_toward_basin(model, target, steps=1))
    if not skip_dense:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_runtime import dense_step

        _peak_step("dense", lambda: dense_step(model, target))


def batched_attention_gradients() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    print("batched gradients (is_grads_batched) through each attention kernel:")
    torch.manual_seed(0)
    base = QIGKernelRecursive(d_model=128, vocab_size=512, n_heads=4, dropout=0.0).cuda().eval()
    for backend, dtype in (
        (SDPBackend.FLASH_ATTENTION, torch.bfloat16),
        (SDPBackend.EFFICIENT_ATTENTION, torch.float32),
        (SDPBackend.CUDNN_ATTENTION, torch.bfloat16),
        (SDPBackend.MATH, torch.float32),
    ):
        model = base.to(dtype)
        params = [p for p in model.parameters() if p.requires_grad]
        with warnings.catch_warnings(record=True) as caught, sdpa_kernel(backend):
            warnings.simplefilter("always")
            try:
                basin = model.compute_basin()
                eye = torch.eye(basin.shape[0], device="cuda", dtype=basin.dtype)
                torch.autograd.grad(
                    basin, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True
                )
                torch.cuda.synchronize()
            except RuntimeError as error:
                print(f"  {backend.name:<20} {dtype}  fails: {str(error).splitlines()[0][:120]}")
                continue
        fallback = [str(w.message) for w in caught if "batching rule" in str(w.message)]
        status = "falls back to a loop: " + fallback[0][:100] if fallback else "native batching"
        print(f"  {backend.name:<20} {dtype}  {status}")
    print("  (consolidation itself uses the math kernel: it needs double backward)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-dense", action="store_true", help="skip the dense baseline")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    started = time.perf_counter()
    passed = cuda_tests()
    spec_consolidation(args.skip_dense)
    batched_attention_gradients()
    print(f"GPU check finished in {time.perf_counter() - started:.0f} s")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
