"""``consolidate_toward_basin``: sleep consolidation by damped Gauss-Newton steps.

With the basin ``b(theta)`` computed on the matcher's fixed probes (no new data),
residual ``r = b - target`` and Jacobian ``J = db/dtheta`` (``basin_dim x P``),
each step minimises the linearised, damped Fisher objective
``1/2 (r + J d)^T diag(F) (r + J d) + lambda/2 |d|^2``, whose normal equations
``(J^T diag(F) J + lambda I) d = -J^T diag(F) r`` are solved in basin space through
the push-through identity:

    d = -J^T (lambda I + diag(F) J J^T)^-1 diag(F) r

a ``basin_dim x basin_dim`` system whatever the parameter count. ``lambda`` is
``damping`` times the mean diagonal of ``diag(F) J J^T``. The step ``eta * d``
starts at ``eta = lr`` and is halved until the Fisher distance decreases, so the
distance never increases; when no halving helps, consolidation stops early.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

import torch
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from qig_guard.runtime.geometry import fisher_distance
from qig_guard.runtime.model import QIGKernelRecursive
from qig_guard.runtime.modes import evaluation


class ConsolidationStats(TypedDict):
    """Distances before and after, their difference, steps taken and the trajectory."""

    basin_distance_before: float
    basin_distance_after: float
    consolidation_improvement: float
    steps: int
    distance_history: list[float]


def basin_jacobian(basin: Tensor, params: list[nn.Parameter]) -> Tensor:
    """``d basin / d params`` as a ``(basin_dim, P)`` matrix, one batched backward pass."""
    eye = torch.eye(basin.shape[0], dtype=basin.dtype, device=basin.device)
    grads = torch.autograd.grad(
        basin, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True
    )
    return torch.cat(
        [
            (
                g
                if g is not None
                else torch.zeros(eye.shape[0], *p.shape, dtype=p.dtype, device=p.device)
            ).reshape(eye.shape[0], -1)
            for g, p in zip(grads, params, strict=True)
        ],
        dim=1,
    )


def gauss_newton_direction(
    jacobian: Tensor, residual: Tensor, fisher: Tensor, damping: float
) -> Tensor:
    """``-J^T (lambda I + diag(F) J J^T)^-1 diag(F) r`` (see the module docstring)."""
    gram = (jacobian @ jacobian.T).double()
    system = fisher.double().unsqueeze(1) * gram
    lam = damping * float(system.diagonal().mean().clamp_min(1e-12))
    system = system + lam * torch.eye(system.shape[0], dtype=torch.float64, device=system.device)
    solution: Tensor = torch.linalg.solve(system, fisher.double() * residual.double())
    return -(jacobian.T @ solution.to(jacobian.dtype))


def consolidate_toward_basin(
    model: QIGKernelRecursive,
    target_basin: Tensor,
    steps: int = 50,
    lr: float = 1.0,
    *,
    damping: float = 1e-3,
    parameters: Iterable[nn.Parameter] | None = None,
    max_halvings: int = 12,
) -> ConsolidationStats:
    """Move ``model``'s basin toward ``target_basin`` in eval mode on the fixed probes.

    ``parameters`` restricts the update (others stay frozen); by default every
    parameter with ``requires_grad``. The metric is ``model.fisher_diag``. The
    train/eval mode of every submodule is restored afterwards.
    """
    if steps < 0 or lr <= 0 or damping <= 0:
        raise ValueError("need steps >= 0, lr > 0 and damping > 0")
    target = target_basin.detach()
    basin_dim = model.basin_matcher.basin_dim
    if tuple(target.shape) != (basin_dim,) or not bool(torch.all(torch.isfinite(target))):
        raise ValueError(f"target_basin must be a finite tensor of shape ({basin_dim},)")
    params = [p for p in (model.parameters() if parameters is None else parameters)]
    params = [p for p in params if p.requires_grad]
    fisher = model.fisher_diag

    def distance() -> float:
        with torch.no_grad():
            return float(fisher_distance(model.compute_basin(), target, fisher))

    with evaluation(model):
        history = [distance()]
        for _ in range(steps if params else 0):
            basin = model.compute_basin()
            jacobian = basin_jacobian(basin, params)
            direction = gauss_newton_direction(jacobian, basin.detach() - target, fisher, damping)
            start = parameters_to_vector(params).detach()
            eta = lr
            for _ in range(max_halvings):
                with torch.no_grad():
                    vector_to_parameters(start + eta * direction.to(start.dtype), params)
                candidate = distance()
                if candidate < history[-1]:
                    history.append(candidate)
                    break
                eta /= 2
            else:
                with torch.no_grad():
                    vector_to_parameters(start, params)
                break
    return {
        "basin_distance_before": history[0],
        "basin_distance_after": history[-1],
        "consolidation_improvement": history[0] - history[-1],
        "steps": len(history) - 1,
        "distance_history": history,
    }
