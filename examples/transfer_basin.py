"""Basin transfer end to end: train a small teacher, extract its basin, transfer it to a
student of a different width, and compare what moved (a few KB) with the weights (which
never move).

    python examples/transfer_basin.py [OUTPUT_DIR]

Files go to OUTPUT_DIR, or to a temporary directory that is removed afterwards.
Runs on a laptop CPU in well under a minute.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from qig_guard.runtime import (
    QIGKernelRecursive,
    extract_basin_from_checkpoint,
    initialize_with_basin,
    transfer_basin,
)

VOCAB = 64
SHARED: dict[str, Any] = {
    "n_heads": 4,
    "min_recursion_depth": 2,
    "max_recursion_depth": 2,
    "dropout": 0.0,
}
TEACHER: dict[str, Any] = {"d_model": 96, "vocab_size": VOCAB, **SHARED}
STUDENT_WIDTH = 80


def counting_batch(batch: int = 16, length: int = 24) -> torch.Tensor:
    """Sequences that count up modulo the vocabulary from a random start."""
    start = torch.randint(0, VOCAB, (batch, 1))
    return (start + torch.arange(length)) % VOCAB


def train_teacher(steps: int) -> QIGKernelRecursive:
    teacher = QIGKernelRecursive(**TEACHER)
    optimizer = torch.optim.Adam(teacher.parameters(), lr=3e-3)
    for step in range(steps):
        ids = counting_batch()
        logits, _ = teacher(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        optimizer.step()
        if step % 20 == 0 or step == steps - 1:
            print(f"teacher step {step:3d}  loss {loss.item():.3f}")
    return teacher


def run(directory: Path) -> None:
    torch.manual_seed(0)
    started = time.perf_counter()
    steps = 40
    teacher = train_teacher(steps)
    checkpoint = directory / "teacher.pt"
    torch.save({"model_state_dict": teacher.state_dict(), "step": steps}, checkpoint)

    # The checkpoint stores no target, so the basin is computed from the weights,
    # loaded into a fresh instance of the teacher's architecture.
    basin_file = extract_basin_from_checkpoint(
        checkpoint,
        directory / "teacher.basin.json",
        model=QIGKernelRecursive(**TEACHER),
        source_model="teacher",
        training_steps=steps,
    )

    # Wider than the basin (64): a student with d_model <= 64 cannot represent every
    # basin, and transfer_basin would warn with the distance it cannot go below.
    student = initialize_with_basin(VOCAB, basin_file, d_model=STUDENT_WIDTH, **SHARED)
    stats = transfer_basin(basin_file, student, steps=100, lr=1e-2)

    weights = checkpoint.stat().st_size
    transferred = basin_file.stat().st_size
    print(f"teacher d_model={TEACHER['d_model']}, student d_model={STUDENT_WIDTH}")
    print(f"basin distance before transfer: {stats['basin_distance_before']:.4f}")
    print(f"basin distance after transfer:  {stats['basin_distance_after']:.4f}")
    print(f"reachable floor for the student: {stats['reachable_floor']:.2g}")
    print(f"transferred: {basin_file.name}, {transferred} bytes")
    print(f"teacher weights (never copied): {weights} bytes, {weights / transferred:.0f}x larger")
    print(f"finished in {time.perf_counter() - started:.1f} s")


def main() -> None:
    if len(sys.argv) > 1:
        directory = Path(sys.argv[1])
        directory.mkdir(parents=True, exist_ok=True)
        run(directory)
    else:
        with tempfile.TemporaryDirectory() as temporary:
            run(Path(temporary))


if __name__ == "__main__":
    main()
