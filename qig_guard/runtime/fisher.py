"""``estimate_fisher_diag``: the diagonal Fisher information over basin coordinates.

The basin directions are the rows ``p_i`` of the matcher's projection. Displacing
token ``t``'s final hidden state along them, ``x_t -> x_t + P^T delta``, changes the
model's next-token distribution; the Fisher information of that distribution with
respect to ``delta`` at 0 has diagonal ``F_i = E[(p_i . g_t)^2]`` with
``g_t = d log p(y_t | x_{<=t}) / d x_t``. Three estimators are offered:

- ``"empirical"``: ``y_t`` is the observed next token (``inputs[:, t + 1]``). Cheap,
  but biased where the model is wrong (it is the gradient outer product, not the Fisher).
- ``"true_mc"``: ``y_t`` is drawn from the model's own predictive distribution, one
  sample per position (an unbiased Monte Carlo estimate of the Fisher information).
- ``"true"``: the exact expectation over ``y_t``. With ``J = d logits / d delta``
  (``vocab x basin_dim``, from ``basin_dim`` forward-mode JVPs through the output
  head), ``F_i = sum_v p_v J_vi^2 - (sum_v p_v J_vi)^2``. Costs memory
  ``basin_dim x vocab`` per token, so tokens are processed in chunks.

Logits at position ``t`` depend on ``x_t`` only through the output head, so a
single backward pass of the summed log-likelihood with respect to the hidden
states yields every per-token gradient ``g_t`` at once; no per-sample parameter
gradient is ever materialised.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import Tensor

from qig_guard.runtime.geometry import wide_dtype
from qig_guard.runtime.matcher import FISHER_ESTIMATORS
from qig_guard.runtime.model import QIGKernelRecursive
from qig_guard.runtime.modes import evaluation

Estimator = Literal["empirical", "true", "true_mc"]
_TRUE_CHUNK_ELEMENTS = 1 << 24


def _exact_fisher(model: QIGKernelRecursive, hidden: Tensor) -> Tensor:
    """Per-token exact Fisher diagonals ``(N, basin_dim)`` for hidden states ``(N, d)``."""

    def logits(h: Tensor) -> Tensor:
        out: Tensor = model.lm_head(model.norm(h))
        return out

    projection = model.basin_matcher.projection
    vocab = model.lm_head.out_features
    chunk = max(1, _TRUE_CHUNK_ELEMENTS // (projection.shape[0] * vocab))
    parts = []
    wide = wide_dtype(hidden)
    for block in torch.split(hidden, chunk):

        def directional(direction: Tensor, block: Tensor = block) -> Tensor:
            tangent = direction.expand_as(block)
            derivative: Tensor = torch.func.jvp(logits, (block,), (tangent,))[1]
            return derivative

        with warnings.catch_warnings():  # torch.func's own internals use torch.jit.script
            warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated")
            jacobian = torch.func.vmap(directional)(projection).to(wide)  # (basin_dim, n, vocab)
        probs = torch.softmax(logits(block).to(wide), dim=-1)
        mean = (jacobian * probs).sum(dim=-1)
        parts.append(((jacobian**2 * probs).sum(dim=-1) - mean**2).T)
    return torch.cat(parts)


def estimate_fisher_diag(
    model: QIGKernelRecursive,
    inputs: Tensor | None = None,
    *,
    estimator: Estimator = "empirical",
    floor: float = 1e-6,
    generator: torch.Generator | None = None,
    install: bool = False,
) -> Tensor:
    """Diagonal Fisher over basin coordinates, shape ``(basin_dim,)``: float64 on the CPU,
    float32 on other devices (MPS has no float64).

    ``inputs`` are token ids ``(B, T)`` with ``T >= 2`` (default: the matcher's
    probes). Entries are floored at ``floor`` so the result is a valid metric for
    ``fisher_distance``. Runs in eval mode (modes restored); parameters are untouched. With
    ``install=True`` the result becomes the matcher's metric (with its provenance).
    """
    if estimator not in FISHER_ESTIMATORS:
        raise ValueError(f"estimator must be one of {FISHER_ESTIMATORS}, got {estimator!r}")
    ids = model.basin_matcher.probe_ids if inputs is None else inputs
    if ids.dim() != 2 or ids.shape[1] < 2:
        raise ValueError("inputs must be token ids of shape (batch, length >= 2)")
    samples = ids[:, 1:].numel()
    with evaluation(model):
        with torch.no_grad():
            hidden = model.features(ids).hidden
            if estimator == "true":
                per_token = _exact_fisher(model, hidden[:, :-1].reshape(-1, hidden.shape[-1]))
                return _finish(model, per_token.mean(dim=0), floor, estimator, samples, install)
        hidden = hidden[:, :-1].detach().requires_grad_(True)
        log_probs = torch.log_softmax(model.lm_head(model.norm(hidden)), dim=-1)
    if estimator == "empirical":
        labels = ids[:, 1:]
    else:
        flat = log_probs.detach().exp().reshape(-1, log_probs.shape[-1])
        labels = torch.multinomial(flat, 1, generator=generator).reshape(ids[:, 1:].shape)
    log_likelihood = log_probs.gather(-1, labels.unsqueeze(-1)).sum()
    (grad_hidden,) = torch.autograd.grad(log_likelihood, hidden)
    wide = wide_dtype(grad_hidden)
    along_basin = grad_hidden.to(wide) @ model.basin_matcher.projection.to(wide).T
    fisher = along_basin.pow(2).reshape(-1, along_basin.shape[-1]).mean(dim=0)
    return _finish(model, fisher, floor, estimator, samples, install)


def _finish(
    model: QIGKernelRecursive,
    fisher: Tensor,
    floor: float,
    estimator: str,
    samples: int,
    install: bool,
) -> Tensor:
    floored = fisher.clamp_min(floor)
    if install:
        model.basin_matcher.set_fisher_diag(floored, estimator, samples)
    return floored
