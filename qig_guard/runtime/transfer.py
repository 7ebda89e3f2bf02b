"""``transfer_basin``: train a model of any size toward another model's basin.

Only the basin (64 numbers) crosses over; the student keeps its own random
parameters and is trained with the basin-proximity loss, the squared Fisher
distance between its basin on its own probes and the target. Squared, because
its gradient is smooth at the target, where the distance itself has a kink.
"""

from __future__ import annotations

import math
import warnings
from typing import TypedDict

import torch
from torch import Tensor

from qig_guard.runtime.geometry import fisher_distance
from qig_guard.runtime.matcher import BasinMatcher, BasinSource
from qig_guard.runtime.model import QIGKernelRecursive
from qig_guard.runtime.modes import evaluation


class TransferStats(TypedDict):
    """Fisher distance to the transferred basin before and after training."""

    basin_distance_before: float
    basin_distance_after: float
    steps: int
    reachable_floor: float


def reachable_floor(matcher: BasinMatcher, target: Tensor) -> float:
    """The smallest Fisher distance to ``target`` any model with this matcher can reach.

    A basin is the mean of ``P u_t`` over tokens, where each ``u_t`` is a
    layer-normalised hidden state: mean 0 and squared norm ``d_model``. Basins
    therefore lie in ``{P u : sum(u) = 0, |u| <= sqrt(d_model)}``; with
    ``d_model <= basin_dim`` that is a flat of dimension ``d_model - 1`` in basin space,
    and a target off it cannot be reached. The floor is the metric projection of
    the target onto that set (least squares, then a norm-constrained ridge).
    """
    projection = matcher.projection.detach().cpu().double()
    width = projection.shape[1]
    if width < 2:
        return float(fisher_distance(torch.zeros_like(target), target, matcher.fisher_diag))
    centring = torch.eye(width, dtype=torch.float64) - 1.0 / width
    basis = torch.linalg.qr(centring[:, : width - 1]).Q  # orthonormal, mean-zero columns
    scale = matcher.fisher_diag.detach().cpu().double().sqrt()
    system = scale.unsqueeze(1) * (projection @ basis)
    goal = scale * target.detach().cpu().double()
    radius = math.sqrt(width)
    weights = torch.linalg.lstsq(system, goal.unsqueeze(1)).solution.squeeze(1)
    if float(weights.norm()) > radius:
        gram, right = system.T @ system, system.T @ goal
        low, high = 0.0, float(gram.diagonal().sum()) + float(right.norm()) / radius
        for _ in range(100):
            ridge = (low + high) / 2
            eye = torch.eye(gram.shape[0], dtype=torch.float64)
            weights = torch.linalg.solve(gram + ridge * eye, right)
            low, high = (ridge, high) if float(weights.norm()) > radius else (low, ridge)
        weights = torch.linalg.solve(
            gram + high * torch.eye(gram.shape[0], dtype=torch.float64), right
        )
    return float((system @ weights - goal).norm())


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
    other model is read. When the target lies beyond what the student's matcher can
    represent (``reachable_floor``, e.g. ``d_model <= basin_dim``), a ``UserWarning``
    gives the floor the distance cannot go below.
    """
    if steps < 0 or lr <= 0:
        raise ValueError("need steps >= 0 and lr > 0")
    matcher = student.basin_matcher
    matcher.set_target_basin(basin_or_path)
    floor = reachable_floor(matcher, matcher.target_basin)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    with evaluation(student):
        with torch.no_grad():
            before = float(matcher.basin_distance(student.compute_basin()))
        if floor > 1e-3 * before:
            warnings.warn(
                f"the student (d_model={matcher.d_model}, basin_dim={matcher.basin_dim}) cannot "
                f"reach this target: its basins span a smaller set, and the Fisher distance "
                f"cannot fall below {floor:.4g} (now {before:.4g})",
                UserWarning,
                stacklevel=2,
            )
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            distance = fisher_distance(
                student.compute_basin(), matcher.target_basin, matcher.fisher_diag
            )
            torch.autograd.backward(distance.pow(2))
            optimizer.step()
        with torch.no_grad():
            after = float(matcher.basin_distance(student.compute_basin()))
    return {
        "basin_distance_before": before,
        "basin_distance_after": after,
        "steps": steps,
        "reachable_floor": floor,
    }
