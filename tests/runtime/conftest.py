"""Small, seeded, CPU-fast models for the runtime tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from qig_guard.runtime import QIGKernelRecursive  # noqa: E402

torch.set_num_threads(1)  # tiny models: threads only add contention on shared CPUs

SMALL = {
    "d_model": 32,
    "vocab_size": 40,
    "n_heads": 2,
    "min_recursion_depth": 1,
    "max_recursion_depth": 2,
    "n_probes": 4,
    "probe_len": 8,
    "max_seq_len": 32,
}


@pytest.fixture
def make_model() -> Callable[..., QIGKernelRecursive]:
    """Build a small seeded model; keyword arguments override ``SMALL``."""

    def build(seed: int = 0, **overrides: Any) -> QIGKernelRecursive:
        torch.manual_seed(seed)
        return QIGKernelRecursive(**{**SMALL, **overrides})

    return build
