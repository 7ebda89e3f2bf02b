"""Fisher geometry on basin coordinates and on the probability simplex.

Basin space carries a constant diagonal Fisher metric ``g = diag(F)``, so its
distance is ``d(a, b) = sqrt(sum_i F_i (a_i - b_i)^2)`` and its geodesics are the
straight lines ``a + t (b - a)``: with constant metric coefficients the
Christoffel symbols vanish and the geodesic equation reduces to ``x'' = 0``.

On the probability simplex the Fisher information metric is the Fisher-Rao
metric. The map ``p -> u = sqrt(p)`` is an isometry (up to a factor 2) onto the
positive orthant of the unit sphere, so ``d_FR(p, q) = 2 * theta`` where
``theta`` is the angle between ``sqrt(p)`` and ``sqrt(q)``; the usual closed form
is ``2 * acos(sum sqrt(p q))``. That form rounds to 0 for near neighbours in
float32 and has an infinite gradient at ``p == q``; here
``theta = 2 * atan2(|u - v|, |u + v|)`` is used, which is accurate everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

_TINY = 1e-300


def _safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt`` with a zero (sub)gradient at 0 instead of ``inf * 0 = nan``."""
    positive = x > 0
    return torch.where(positive, x.clamp_min(_TINY).sqrt(), torch.zeros_like(x))


def wide_dtype(tensor: Tensor) -> torch.dtype:
    """float64 on the CPU or for float64 input; float32 elsewhere (MPS has no float64)."""
    if tensor.device.type == "cpu" or tensor.dtype == torch.float64:
        return torch.float64
    return torch.float32


def _result_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype if dtype.is_floating_point else torch.float64


def _check_last_dim(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.dim() == 0 or b.dim() == 0 or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{name_a} and {name_b} must share their last dimension; "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )


def validate_fisher_diag(fisher_diag: Tensor) -> None:
    """Raise ``ValueError`` unless every entry of ``fisher_diag`` is finite and > 0.

    One host synchronisation when the metric is valid."""
    if fisher_diag.dtype.is_complex:
        raise ValueError("fisher_diag must be real and finite")
    if bool(torch.all(torch.isfinite(fisher_diag) & (fisher_diag > 0))):
        return
    if not bool(torch.all(torch.isfinite(fisher_diag))):
        raise ValueError("fisher_diag must be real and finite")
    raise ValueError(
        "fisher_diag must be strictly positive (a metric); "
        f"smallest entry is {float(fisher_diag.min())}"
    )


def fisher_distance(a: Tensor, b: Tensor, fisher_diag: Tensor) -> Tensor:
    """``sqrt(sum_i F_i (a_i - b_i)^2)`` over the last dimension, batched over the rest.

    Computed as ``|sqrt(F) (a - b)|`` in the promoted floating dtype of ``a`` and
    ``b``, with half precision accumulated in float32 (float64 only when the inputs
    are float64), and returned in the promoted dtype. Without autograd the scaling is
    done in place: one temporary of the inputs' size. The gradient is 0 (a
    subgradient) at ``a == b``, never ``nan``. Raises ``ValueError`` when
    ``fisher_diag`` has a non-positive or non-finite entry.
    """
    _check_last_dim("a", a, "b", b)
    _check_last_dim("a", a, "fisher_diag", fisher_diag)
    validate_fisher_diag(fisher_diag)
    dtype = _result_dtype(a, b)
    compute = torch.promote_types(dtype, torch.float32)
    scale = fisher_diag.to(compute).sqrt()
    diff = a.to(compute) - b.to(compute)
    if diff.requires_grad or scale.requires_grad:
        diff = diff * scale
    else:
        diff.mul_(scale)
    norm: Tensor = torch.linalg.vector_norm(diff, dim=-1)
    return norm.to(dtype)


def fisher_geodesic(a: Tensor, b: Tensor, t: float | Tensor) -> Tensor:
    """Point at fraction ``t`` of the geodesic from ``a`` to ``b`` under a constant
    diagonal metric: the straight line ``a + t (b - a)``, whatever ``F`` is."""
    _check_last_dim("a", a, "b", b)
    dtype = _result_dtype(a, b)
    weight = t.to(dtype) if isinstance(t, Tensor) else torch.tensor(t, dtype=dtype)
    return torch.lerp(a.to(dtype), b.to(dtype), weight)


def _sqrt_probabilities(name: str, p: Tensor) -> Tensor:
    if not p.dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point tensor")
    wide = p.to(wide_dtype(p))
    if not bool(torch.all(torch.isfinite(wide))) or not bool(torch.all(wide >= 0)):
        raise ValueError(f"{name} must be finite and non-negative")
    total = wide.sum(dim=-1, keepdim=True)
    if not bool(torch.all(total > 0)):
        raise ValueError(f"{name} must have a positive sum along its last dimension")
    return _safe_sqrt(wide / total)


def _half_angle(u: Tensor, v: Tensor) -> Tensor:
    """Half the angle between unit vectors ``u`` and ``v``, stable near 0 and pi."""
    minus = _safe_sqrt(((u - v) ** 2).sum(dim=-1))
    plus = _safe_sqrt(((u + v) ** 2).sum(dim=-1))
    return torch.atan2(minus, plus)


def fisher_rao_distance(p: Tensor, q: Tensor) -> Tensor:
    """Fisher-Rao distance ``2 * acos(sum sqrt(p q))`` between categorical distributions.

    ``p`` and ``q`` are non-negative along the last dimension and are normalised to
    sum 1. Evaluated as ``4 * atan2(|sqrt p - sqrt q|, |sqrt p + sqrt q|)`` in float64
    (float32 off the CPU unless the inputs are float64);
    the result lies in ``[0, pi]`` and has the promoted dtype of the inputs.
    """
    _check_last_dim("p", p, "q", q)
    u, v = _sqrt_probabilities("p", p), _sqrt_probabilities("q", q)
    return (4.0 * _half_angle(u, v)).to(_result_dtype(p, q))


def fisher_rao_geodesic(p: Tensor, q: Tensor, t: float | Tensor) -> Tensor:
    """Point at fraction ``t`` of the Fisher-Rao geodesic from ``p`` to ``q``.

    The great-circle interpolation (slerp) of ``sqrt p`` and ``sqrt q``, squared.
    ``sin(k theta) / sin(theta)`` is written with ``sinc`` so that ``p == q`` is exact.
    """
    _check_last_dim("p", p, "q", q)
    u, v = _sqrt_probabilities("p", p), _sqrt_probabilities("q", q)
    theta = (2.0 * _half_angle(u, v)).unsqueeze(-1)
    wide = u.dtype
    s = t.to(wide) if isinstance(t, Tensor) else torch.tensor(float(t), dtype=wide, device=u.device)
    if s.dim() > 0:
        s = s.unsqueeze(-1)
    denominator = torch.sinc(theta / torch.pi)
    coef_u = (1 - s) * torch.sinc((1 - s) * theta / torch.pi) / denominator
    coef_v = s * torch.sinc(s * theta / torch.pi) / denominator
    point = (coef_u * u + coef_v * v) ** 2
    return (point / point.sum(dim=-1, keepdim=True)).to(_result_dtype(p, q))
