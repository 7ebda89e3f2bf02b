"""``QIGKernelRecursive``: a compact recursive transformer that carries a basin.

One pre-norm causal transformer block is applied repeatedly ("integration
loops"). Every forward runs at least ``min_recursion_depth`` loops and then keeps
looping, up to ``max_recursion_depth``, until the integration measure reaches
``min_Phi``.

``Phi`` (integration): with ``u_t`` the layer-normalised (no affine) hidden state
of token ``t``, ``Phi = |mean_t u_t|^2 / mean_t |u_t|^2``. It lies in ``[0, 1]``
(Jensen): 1 when all tokens share one state, near ``1/T`` when the token states
are unrelated. The regime is named from ``Phi``: below 0.45 ``"linear"``, below
0.8 ``"geometric"``, otherwise ``"breakdown"`` (over-integrated, tokens collapsed).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qig_guard.runtime.matcher import BasinMatcher, BasinSource

LINEAR_BELOW = 0.45
GEOMETRIC_BELOW = 0.8


class Telemetry(Mapping[str, Any]):
    """What ``QIGKernelRecursive.forward`` reports next to the logits, read lazily.

    A read-only mapping with ``Phi`` (float), ``recursion_depth`` (int), ``regime``
    (str) and ``basin_distance`` (float, or None without a target). Values that live
    on the device are turned into Python numbers on first read, not in ``forward``,
    so a training loop that never reads them pays no host synchronisation for them.
    """

    _KEYS = ("Phi", "recursion_depth", "regime", "basin_distance")

    def __init__(self, phi: Tensor, depth: int, basin_distance: Callable[[], float | None]):
        self._phi = phi
        self._depth = depth
        self._basin_distance = basin_distance
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._KEYS:
            raise KeyError(key)
        if key not in self._values:
            self._values[key] = self._compute(key)
        return self._values[key]

    def _compute(self, key: str) -> Any:
        if key == "Phi":
            return float(self._phi)
        if key == "recursion_depth":
            return self._depth
        if key == "regime":
            return regime_of(self["Phi"])
        return self._basin_distance()

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)

    def __repr__(self) -> str:
        return f"Telemetry({dict(self)!r})"


class Features(NamedTuple):
    """Final hidden states ``(B, T, d_model)``, logits, per-sequence ``Phi``, loops run."""

    hidden: Tensor
    logits: Tensor
    Phi: Tensor
    recursion_depth: int


def regime_of(phi: float) -> str:
    """Name the regime of an integration value ``phi`` (see the module docstring)."""
    if phi < LINEAR_BELOW:
        return "linear"
    return "geometric" if phi < GEOMETRIC_BELOW else "breakdown"


def integration(hidden: Tensor) -> Tensor:
    """``Phi`` of hidden states ``(B, T, d)`` per sequence, shape ``(B,)``."""
    unit = F.layer_norm(hidden, (hidden.shape[-1],))
    shared = unit.mean(dim=-2).pow(2).sum(dim=-1)
    total = unit.pow(2).sum(dim=-1).mean(dim=-1)
    return shared / total.clamp_min(1e-12)


class _Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm_attn = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm_attn(x)).chunk(3, dim=-1)
        heads = (batch, length, self.n_heads, width // self.n_heads)
        q, k, v = (t.reshape(heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.dropout(self.out(attended.transpose(1, 2).reshape(batch, length, width)))
        out: Tensor = x + self.dropout(self.mlp(self.norm_mlp(x)))
        return out


class QIGKernelRecursive(nn.Module):
    """Recursive transformer language model with a ``basin_matcher``.

    ``forward(input_ids)`` returns ``(logits, telemetry)``. ``target_basin`` is a
    tensor or a basin-file path, handed to ``basin_matcher.set_target_basin``.
    Parameters are initialised randomly (seed with ``torch.manual_seed``).
    """

    def __init__(
        self,
        d_model: int = 768,
        vocab_size: int = 50257,
        n_heads: int = 6,
        min_recursion_depth: int = 3,
        min_Phi: float = 0.7,
        target_basin: BasinSource | None = None,
        *,
        max_recursion_depth: int | None = None,
        basin_dim: int = 64,
        max_seq_len: int = 512,
        dropout: float = 0.1,
        n_probes: int = 8,
        probe_len: int = 16,
        probe_seed: int = 0,
    ) -> None:
        super().__init__()
        max_depth = 2 * min_recursion_depth if max_recursion_depth is None else max_recursion_depth
        if min_recursion_depth < 1 or max_depth < min_recursion_depth:
            raise ValueError(
                "need 1 <= min_recursion_depth <= max_recursion_depth, got "
                f"{min_recursion_depth} and {max_depth}"
            )
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if probe_len > max_seq_len:
            raise ValueError("probe_len must not exceed max_seq_len")
        self.config: dict[str, Any] = {
            "d_model": d_model,
            "vocab_size": vocab_size,
            "n_heads": n_heads,
            "min_recursion_depth": min_recursion_depth,
            "min_Phi": min_Phi,
            "max_recursion_depth": max_depth,
            "basin_dim": basin_dim,
            "max_seq_len": max_seq_len,
            "dropout": dropout,
            "n_probes": n_probes,
            "probe_len": probe_len,
            "probe_seed": probe_seed,
        }
        self.min_recursion_depth = min_recursion_depth
        self.max_recursion_depth = max_depth
        self.min_Phi = min_Phi
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_seq_len, d_model)
        self.block = _Block(d_model, n_heads, dropout)
        self.norm = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.basin_matcher = BasinMatcher(
            d_model, vocab_size, basin_dim, n_probes=n_probes, probe_len=probe_len, seed=probe_seed
        )
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        self._bind_matcher()
        if target_basin is not None:
            self.basin_matcher.set_target_basin(target_basin)

    def _bind_matcher(self) -> None:
        owner = weakref.ref(self)

        def basin() -> Tensor:
            model = owner()
            if model is None:
                raise RuntimeError("the model that owned this matcher is gone")
            return model.compute_basin()

        self.basin_matcher.bind(basin)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # type: ignore[no-untyped-call]
        self._bind_matcher()  # copies and unpickled models measure themselves

    @property
    def fisher_diag(self) -> Tensor:
        """The basin metric held by the matcher."""
        return self.basin_matcher.fisher_diag

    def features(self, input_ids: Tensor) -> Features:
        """Run the integration loops on ``input_ids`` ``(B, T)``."""
        positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
        hidden = self.token_embedding(input_ids) + self.position_embedding(positions)
        depth = 0
        while True:
            hidden = self.block(hidden)
            depth += 1
            phi = integration(hidden)
            if depth >= self.max_recursion_depth:
                break
            if depth >= self.min_recursion_depth and float(phi.detach().mean()) >= self.min_Phi:
                break
        return Features(hidden, self.lm_head(self.norm(hidden)), phi, depth)

    def forward(self, input_ids: Tensor) -> tuple[Tensor, Telemetry]:
        """Logits ``(B, T, vocab)`` and lazy telemetry for ``input_ids`` ``(B, T)``.

        The basin distance is computed from this batch's hidden states only when the
        telemetry's ``basin_distance`` is read.
        """
        hidden, logits, phi, depth = self.features(input_ids)
        matcher = self.basin_matcher
        detached = hidden.detach()

        def basin_distance() -> float | None:
            if not bool(matcher.has_target):
                return None
            with torch.no_grad():
                return float(matcher.basin_distance(matcher.pool(detached)))

        return logits, Telemetry(phi.detach().mean(), depth, basin_distance)

    def compute_basin(self, input_ids: Tensor | None = None) -> Tensor:
        """The basin (differentiable in the parameters), on the matcher's probes by default."""
        ids = self.basin_matcher.probe_ids if input_ids is None else input_ids
        return self.basin_matcher.pool(self.features(ids).hidden)


def initialize_with_basin(
    vocab_size: int, target_basin_path: str | os.PathLike[str], **sizes: Any
) -> QIGKernelRecursive:
    """A fresh model (random parameters) whose target is loaded from a basin file.

    Defaults follow the spec (``d_model=768, n_heads=6, min_recursion_depth=3,
    min_Phi=0.7``); ``sizes`` overrides any constructor argument. No weight is copied.
    """
    options: dict[str, Any] = {
        "d_model": 768,
        "n_heads": 6,
        "min_recursion_depth": 3,
        "min_Phi": 0.7,
    }
    options.update(sizes)
    return QIGKernelRecursive(vocab_size=vocab_size, target_basin=target_basin_path, **options)
