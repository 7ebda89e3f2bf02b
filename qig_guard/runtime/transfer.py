"""``transfer_basin``: train a model of any size toward another model's basin.

Only the basin (64 numbers) crosses over; the student keeps its own random
parameters and is trained with the basin-proximity loss, the squared Fisher
distance between its basin on its own probes and the target. Squared, because
its gradient is smooth at the target, where the distance itself has a kink.
"""

from __future__ import annotations

from typing import TypedDict

import torch

from qig_guard.runtime.geometry import fisher_distance
from qig_guard.runtime.matcher import BasinSource
from qig_guard.runtime.model import QIGKernelRecursive
from qig_guard.runtime.modes import evaluation


class TransferStats(TypedDict):
    """Fisher distance to the transferred basin before and after training."""

    basin_distance_before: float
    basin_distance_after: float
    steps: int


def transfer_basin(
    basin_or_path: BasinSource,
    student: QIGKernelRecursive,
    steps: int = 200,
    lr: float = 3e-3,
) -> TransferStats:
    """Set ``student``'s target to the basin and train toward it with Adam.

    The target goes through ``basin_matcher.set_target_basin`` (a basin file is
    validated). Training runs in eval mode (the basin is defined without
    dropout noise); the student's previous modes are restored. No weight of any
    other model is read.
    """
    if steps < 0 or lr <= 0:
        raise ValueError("need steps >= 0 and lr > 0")
    matcher = student.basin_matcher
    matcher.set_target_basin(basin_or_path)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    with evaluation(student):
        with torch.no_grad():
            before = float(matcher.basin_distance(student.compute_basin()))
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            distance = fisher_distance(
                student.compute_basin(), matcher.target_basin, matcher.fisher_diag
            )
            torch.autograd.backward(distance.pow(2))
            optimizer.step()
        with torch.no_grad():
            after = float(matcher.basin_distance(student.compute_basin()))
    return {"basin_distance_before": before, "basin_distance_after": after, "steps": steps}
