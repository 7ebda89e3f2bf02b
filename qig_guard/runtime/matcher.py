"""``BasinMatcher``: the map from a model's hidden states to its basin, and its target.

Each token's final hidden state ``x_t`` is normalised (layer norm without affine
parameters) and projected by a fixed matrix ``P`` with orthonormal rows:
``z_t = P layer_norm(x_t)``. The basin is the mean of ``z_t`` over the fixed probe
inputs the matcher owns, so it is a differentiable function of every parameter
that shapes the hidden states. ``P`` is a buffer, not a parameter: a learned
projection (or an affine norm) could reach any target by itself without the
model's representation changing at all, and the basin would say nothing about it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qig_guard.basin import load_basin
from qig_guard.runtime.geometry import fisher_distance, validate_fisher_diag

BasinSource = Tensor | str | os.PathLike[str]
FISHER_ESTIMATORS = ("empirical", "true", "true_mc")
METRIC_BUFFERS = ("target_basin", "fisher_diag")


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half and bfloat16 accumulate in float32; float32 and float64 in themselves."""
    return torch.promote_types(dtype, torch.float32)


def read_basin(source: BasinSource) -> tuple[Tensor, tuple[Tensor, str, int] | None]:
    """A basin tensor and, for a basin file with a metric, ``(fisher_diag, estimator, samples)``.

    A tensor is returned as given; a path is read with ``qig_guard.basin.load_basin``
    (schema-validated, never unpickled). Anything else raises ``TypeError``.
    """
    if isinstance(source, Tensor):
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"expected a tensor or a path to a basin file, got {type(source).__name__}; "
            "wrap a list with torch.tensor(...)"
        )
    loaded = load_basin(source)
    basin = torch.tensor(loaded.basin, dtype=torch.float32)
    if loaded.fisher_diag is None:
        return basin, None
    fisher = torch.tensor(loaded.fisher_diag, dtype=torch.float32)
    return basin, (
        fisher,
        str(loaded.metadata["fisher_estimator"]),
        int(loaded.metadata["fisher_samples"]),
    )


def fisher_fields(fisher_diag: Tensor, estimator: Tensor, samples: Tensor) -> dict[str, Any]:
    """Basin-file fields for a metric held in buffers; empty while it is the default."""
    count = int(samples)
    if count <= 0:
        return {}
    index = int(estimator)
    if not 0 <= index < len(FISHER_ESTIMATORS):
        raise ValueError(
            f"fisher_estimator is {index}, not an index into {FISHER_ESTIMATORS} "
            f"(0 to {len(FISHER_ESTIMATORS) - 1})"
        )
    return {
        "fisher_diag": fisher_diag.detach().cpu().double().tolist(),
        "fisher_estimator": FISHER_ESTIMATORS[index],
        "fisher_samples": count,
    }


def _orthonormal_projection(d_model: int, basin_dim: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(max(d_model, basin_dim), min(d_model, basin_dim), generator=generator)
    q: Tensor = torch.linalg.qr(gaussian).Q
    return q.T.contiguous() if d_model >= basin_dim else q.contiguous()


class BasinMatcher(nn.Module):
    """Projects hidden states to basin coordinates and holds the target basin.

    Buffers (all in ``state_dict``): ``projection`` (``basin_dim x d_model``),
    ``probe_ids`` (``n_probes x probe_len`` token ids, seeded), ``target_basin``,
    ``has_target``, ``fisher_diag`` (the basin metric, ones until estimated) and
    its provenance ``fisher_estimator`` (index into ``FISHER_ESTIMATORS``) and
    ``fisher_samples`` (0 while the metric is the default).
    ``set_target_basin`` is the only way to change the target; assigning the
    attribute raises ``AttributeError``. ``target_basin`` and ``fisher_diag`` stay
    float32 (or float64) when the module is cast to half precision: a Fisher entry
    above 65,504 would otherwise become ``inf``.
    """

    projection: Tensor
    probe_ids: Tensor
    target_basin: Tensor
    has_target: Tensor
    fisher_diag: Tensor
    fisher_estimator: Tensor
    fisher_samples: Tensor

    def __init__(
        self,
        d_model: int,
        vocab_size: int,
        basin_dim: int = 64,
        target_basin: BasinSource | None = None,
        *,
        n_probes: int = 8,
        probe_len: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("d_model", d_model),
            ("vocab_size", vocab_size),
            ("basin_dim", basin_dim),
            ("n_probes", n_probes),
            ("probe_len", probe_len),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.d_model = d_model
        self.basin_dim = basin_dim
        generator = torch.Generator().manual_seed(seed + 1)
        probes = torch.randint(0, vocab_size, (n_probes, probe_len), generator=generator)
        self.register_buffer("projection", _orthonormal_projection(d_model, basin_dim, seed))
        self.register_buffer("probe_ids", probes)
        self.register_buffer("target_basin", torch.zeros(basin_dim))
        self.register_buffer("has_target", torch.tensor(False))
        self.register_buffer("fisher_diag", torch.ones(basin_dim))
        self.register_buffer("fisher_estimator", torch.tensor(0))
        self.register_buffer("fisher_samples", torch.tensor(0))
        self._basin_of_owner: Callable[[], Tensor] | None = None
        if target_basin is not None:
            self.set_target_basin(target_basin)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "target_basin" and "target_basin" in self.__dict__.get("_buffers", {}):
            raise AttributeError(
                "assign the target with set_target_basin(basin_or_path), which validates it"
            )
        super().__setattr__(name, value)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> BasinMatcher:
        kept = {name: self._buffers[name] for name in METRIC_BUFFERS}
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        for name, original in kept.items():
            moved = self._buffers[name]
            if original is not None and moved is not None and moved.dtype != original.dtype:
                wide = accumulation_dtype(moved.dtype)
                self._buffers[name] = original.to(device=moved.device, dtype=wide)
        return self

    @property
    def current_basin(self) -> Tensor:
        """The owning model's basin on the probes now (read-only, differentiable).

        Runs the model in its current mode; call ``model.eval()`` first for the
        dropout-free basin. Raises ``RuntimeError`` for a matcher that belongs to no model.
        """
        if self._basin_of_owner is None:
            raise RuntimeError("this matcher belongs to no model; use model.compute_basin()")
        return self._basin_of_owner()

    def bind(self, basin_of_owner: Callable[[], Tensor]) -> None:
        """Set what ``current_basin`` evaluates (called by the owning model)."""
        self._basin_of_owner = basin_of_owner

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # type: ignore[no-untyped-call]
        state["_basin_of_owner"] = None  # rebound by the owner; a copy must not call the original
        return state

    def checked_basin(
        self, basin_or_path: BasinSource
    ) -> tuple[Tensor, tuple[Tensor, str, int] | None]:
        """``read_basin`` plus the target checks: real floating point, finite, ``(basin_dim,)``."""
        basin, fisher = read_basin(basin_or_path)
        if not basin.dtype.is_floating_point:
            raise ValueError(f"target basin must be floating point, got {basin.dtype}")
        if tuple(basin.shape) != (self.basin_dim,):
            raise ValueError(
                f"target basin must have shape ({self.basin_dim},), got {tuple(basin.shape)}"
            )
        if not bool(torch.all(torch.isfinite(basin))):
            raise ValueError("target basin must be finite")
        return basin, fisher

    def set_target_basin(self, basin_or_path: BasinSource) -> None:
        """Validate and set the target from a tensor or a standard basin file.

        A tensor must be real floating point, finite, of shape ``(basin_dim,)``. A
        path is read with ``qig_guard.basin.load_basin`` (schema-validated, never
        unpickled); its ``fisher_diag``, when present, becomes the basin metric.
        Anything else (a list, say) raises ``TypeError``: expected a tensor or a path.
        """
        basin, fisher = self.checked_basin(basin_or_path)
        if fisher is not None:
            self.set_fisher_diag(*fisher)
        with torch.no_grad():
            self.target_basin.copy_(basin.detach())
            self.has_target.fill_(True)

    def set_fisher_diag(self, fisher_diag: Tensor, estimator: str, samples: int) -> None:
        """Set the diagonal basin metric (strictly positive, shape ``(basin_dim,)``)
        with the estimator that produced it and its sample count."""
        if estimator not in FISHER_ESTIMATORS or samples < 1:
            raise ValueError(
                f"estimator must be one of {FISHER_ESTIMATORS} and samples >= 1, "
                f"got {estimator!r} and {samples}"
            )
        if tuple(fisher_diag.shape) != (self.basin_dim,):
            raise ValueError(
                f"fisher_diag must have shape ({self.basin_dim},), got {tuple(fisher_diag.shape)}"
            )
        validate_fisher_diag(fisher_diag)
        with torch.no_grad():
            self.fisher_diag.copy_(fisher_diag.detach())
            self.fisher_estimator.fill_(FISHER_ESTIMATORS.index(estimator))
            self.fisher_samples.fill_(samples)

    def fisher_fields(self) -> dict[str, Any]:
        """``fisher_diag``/``fisher_estimator``/``fisher_samples`` for a basin file, if set."""
        return fisher_fields(self.fisher_diag, self.fisher_estimator, self.fisher_samples)

    def coordinates(self, hidden: Tensor) -> Tensor:
        """Per-token basin coordinates ``P layer_norm(x_t)`` of hidden states ``(..., d_model)``."""
        return F.layer_norm(hidden, (self.d_model,)) @ self.projection.T

    def pool(self, hidden: Tensor) -> Tensor:
        """The basin of a batch of hidden states ``(..., d_model)``: mean coordinates,
        accumulated in at least float32 (a half-precision model gets a float32 basin)."""
        coordinates = self.coordinates(hidden).reshape(-1, self.basin_dim)
        return coordinates.mean(dim=0, dtype=accumulation_dtype(coordinates.dtype))

    def basin_distance(self, basin: Tensor) -> Tensor:
        """Fisher distance from ``basin`` (batched over leading dims) to the target."""
        if not bool(self.has_target):
            raise RuntimeError("no target basin set; call set_target_basin first")
        return fisher_distance(basin, self.target_basin, self.fisher_diag)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, basin_dim={self.basin_dim}"
