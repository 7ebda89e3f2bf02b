"""``consolidate_toward_basin``: sleep consolidation by damped Gauss-Newton steps.

With the basin ``b(theta)`` computed on the matcher's fixed probes (no new data),
residual ``r = b - target`` and Jacobian ``J = db/dtheta`` (``basin_dim x P``),
each step minimises the linearised, damped Fisher objective
``1/2 (r + J d)^T diag(F) (r + J d) + lambda/2 |d|^2``, whose normal equations
``(J^T diag(F) J + lambda I) d = -J^T diag(F) r`` are solved in basin space through
the push-through identity:

    d = -J^T (lambda I + diag(F) J J^T)^-1 diag(F) r

a ``basin_dim x basin_dim`` system whatever the parameter count. ``lambda`` is
``damping`` times the mean diagonal of ``diag(F) J J^T``.

``J`` is never materialised. ``J J^T`` is the Hessian in ``u`` of
``|J^T u|^2 / 2``: ``J^T u`` is one vector-Jacobian product built with a graph,
its squared norm's gradient in ``u`` is ``J J^T u``, and each column of ``J J^T``
is one more backward pass through that (a Jacobian-vector product of ``J`` taken
by double backward; the math attention kernel is used, as it is twice differentiable
on every device). ``J^T y`` is one vector-Jacobian product. Parameters that
cannot reach the basin (the output head, the final norm) are skipped. Extra
memory is a few parameter-sized buffers (the product, the step, the starting
point), not ``basin_dim`` of them; the small system is solved in float64 on the CPU.

The step ``eta * d`` starts at ``eta = step_fraction`` and is halved until the
Fisher distance decreases, so the distance never increases; parameters are
updated in place with ``torch._foreach_*`` and keep their own storage.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Literal, TypedDict

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from qig_guard.runtime.geometry import fisher_distance
from qig_guard.runtime.matcher import BasinSource
from qig_guard.runtime.model import QIGKernelRecursive
from qig_guard.runtime.modes import evaluation

StopReason = Literal["converged", "line_search_failed", "max_steps"]
_COLUMN_BYTES = 16 * 1024**2


class ConsolidationStats(TypedDict):
    """Distances before and after, steps taken, why it stopped and how long it took."""

    basin_distance_before: float
    basin_distance_after: float
    consolidation_improvement: float
    steps: int
    distance_history: list[float]
    stop_reason: StopReason
    seconds: float


def _vjp(basin: Tensor, params: Sequence[Tensor], weights: Tensor, *, keep: bool) -> list[Tensor]:
    """``J^T weights`` as one tensor per parameter (zeros where it does not reach)."""
    grads = torch.autograd.grad(
        basin, params, grad_outputs=weights, retain_graph=keep, allow_unused=True
    )
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]


def reaching(basin: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    """The parameters among ``params`` that ``basin`` depends on (graph kept)."""
    grads = torch.autograd.grad(
        basin,
        params,
        grad_outputs=torch.zeros_like(basin),
        retain_graph=True,
        allow_unused=True,
    )
    return [p for p, g in zip(params, grads, strict=True) if g is not None]


def basin_with_graph(model: QIGKernelRecursive) -> Tensor:
    """The basin with a twice-differentiable graph (math attention kernel)."""
    with sdpa_kernel(SDPBackend.MATH):
        return model.compute_basin()


def gram_matrix(basin: Tensor, params: Sequence[Tensor]) -> Tensor:
    """``J J^T`` (float64, CPU) without ``J``: the Hessian in ``u`` of ``|J^T u|^2 / 2``.

    ``s = J^T u`` is one vector-Jacobian product built with a graph; ``g = J s``
    is its gradient in ``u``; column ``i`` of ``J J^T`` is then the product of
    ``g``'s Jacobian with ``e_i`` (a Jacobian-vector product of ``J J^T``),
    computed a few columns per pass so that the live buffers stay a few
    parameter-sized tensors (at most ``_COLUMN_BYTES`` for small models).
    """
    dim = basin.shape[0]
    u = torch.zeros_like(basin, requires_grad=True)
    spread = torch.autograd.grad(basin, params, grad_outputs=u, create_graph=True)
    half_square = torch.stack([(part * part).sum() for part in spread]).sum() / 2
    (gram_u,) = torch.autograd.grad(half_square, u, create_graph=True)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    width = max(1, min(dim, _COLUMN_BYTES // max(1, param_bytes)))
    eye = torch.eye(dim, dtype=basin.dtype, device=basin.device)
    blocks = []
    for first in range(0, dim, width):
        (rows,) = torch.autograd.grad(
            gram_u,
            u,
            grad_outputs=eye[first : first + width],
            retain_graph=True,
            is_grads_batched=True,
        )
        blocks.append(rows.detach().cpu().double())
    gram = torch.cat(blocks)
    return (gram + gram.T) / 2


def gauss_newton_coefficients(
    gram: Tensor, residual: Tensor, fisher: Tensor, damping: float
) -> Tensor:
    """``y = (lambda I + diag(F) G)^-1 diag(F) r``, so that the step is ``-J^T y``."""
    weights = fisher.detach().cpu().double()
    system = weights.unsqueeze(1) * gram
    lam = damping * float(system.diagonal().mean().clamp_min(1e-12))
    system = system + lam * torch.eye(system.shape[0], dtype=torch.float64)
    solution: Tensor = torch.linalg.solve(system, weights * residual.detach().cpu().double())
    return solution


def consolidate_toward_basin(
    model: QIGKernelRecursive,
    target_basin: BasinSource,
    steps: int = 50,
    lr: float | None = None,
    *,
    step_fraction: float = 1.0,
    damping: float = 1e-3,
    parameters: Iterable[nn.Parameter] | None = None,
    max_halvings: int = 12,
    tolerance: float = 1e-6,
) -> ConsolidationStats:
    """Move ``model``'s basin toward ``target_basin`` in eval mode on the fixed probes.

    ``target_basin`` is a tensor or a basin-file path. ``parameters`` restricts the
    update (others stay frozen); by default every parameter with ``requires_grad``.
    The metric is ``model.fisher_diag``. Each step is a full damped Gauss-Newton step
    scaled by ``step_fraction`` (0 < f <= 1) and shortened by line search. ``lr``
    (the spec's optimizer learning rate) has no meaning here: passing it warns and
    is otherwise ignored. Stops when the distance is at most ``tolerance``
    (``"converged"``), when no halving reduces it (``"line_search_failed"``) or
    after ``steps`` steps (``"max_steps"``). Train/eval modes are restored.
    """
    started = time.perf_counter()
    if lr is not None:
        warnings.warn(
            f"consolidate_toward_basin takes damped Gauss-Newton steps, not gradient steps: "
            f"lr={lr} is ignored; pass step_fraction= (0 < f <= 1) for shorter steps",
            UserWarning,
            stacklevel=2,
        )
    if steps < 0 or not 0 < step_fraction <= 1 or damping <= 0:
        raise ValueError("need steps >= 0, 0 < step_fraction <= 1 and damping > 0")
    target = model.basin_matcher.checked_basin(target_basin)[0].detach()
    fisher = model.fisher_diag
    target = target.to(device=fisher.device, dtype=fisher.dtype)
    chosen = {id(p) for p in (model.parameters() if parameters is None else parameters)}
    named = {name: p for name, p in model.named_parameters() if id(p) in chosen and p.requires_grad}
    if not named:
        raise ValueError("no trainable parameters to consolidate")

    reason: StopReason = "max_steps"
    with evaluation(model):
        params = reaching(model.compute_basin(), [*named.values()])
        if not params:
            raise ValueError("none of the parameters to consolidate reaches the basin")
        history = [basin_distance(model, target, fisher)]
        for step in range(steps + 1):
            if history[-1] <= tolerance:
                reason = "converged"
                break
            if step == steps:
                break
            moved = _step(
                model, params, target, fisher, history, step_fraction, damping, max_halvings
            )
            if not moved:
                reason = "line_search_failed"
                break
    return {
        "basin_distance_before": history[0],
        "basin_distance_after": history[-1],
        "consolidation_improvement": history[0] - history[-1],
        "steps": len(history) - 1,
        "distance_history": history,
        "stop_reason": reason,
        "seconds": time.perf_counter() - started,
    }


def _step(
    model: QIGKernelRecursive,
    params: list[Tensor],
    target: Tensor,
    fisher: Tensor,
    history: list[float],
    step_fraction: float,
    damping: float,
    max_halvings: int,
) -> bool:
    """One line-searched Gauss-Newton step; appends the new distance, or returns False."""
    basin = basin_with_graph(model)
    coefficients = gauss_newton_coefficients(
        gram_matrix(basin, params), basin - target, fisher, damping
    )
    weights = -coefficients.to(device=basin.device, dtype=basin.dtype)
    direction = _vjp(basin, params, weights, keep=False)
    del basin
    with torch.no_grad():
        start = torch._foreach_mul(params, 1.0)
        eta = step_fraction
        for _ in range(max_halvings):
            torch._foreach_copy_(params, start)
            torch._foreach_add_(params, direction, alpha=eta)
            candidate = basin_distance(model, target, fisher)
            if candidate < history[-1]:
                history.append(candidate)
                return True
            eta /= 2
        torch._foreach_copy_(params, start)
    return False


def basin_distance(model: QIGKernelRecursive, target: Tensor, fisher: Tensor) -> float:
    """The Fisher distance from ``model``'s basin to ``target`` (no graph)."""
    with torch.no_grad():
        return float(fisher_distance(model.compute_basin(), target, fisher))
