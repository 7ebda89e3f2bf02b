"""``sync_constellation_basins``: vicarious learning of observers from the active model.

Basin space has the constant diagonal metric ``diag(F)``, whose geodesics are
straight lines (no Christoffel symbols). Moving an observer a fraction ``w`` along
the geodesic toward the active basin is therefore ``obs + w (active - obs)``,
whatever ``F`` is, and every Fisher distance to the active basin contracts by
exactly ``1 - w``: ``d(new, active) = (1 - w) d(old, active)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import torch
from torch import Tensor


@overload
def sync_constellation_basins(
    active_basin: Tensor,
    observer_basins: Tensor,
    ocean_basin: Tensor,
    sync_weight: float = ...,
    *,
    sync_weight_range: tuple[float, float] = ...,
) -> tuple[Tensor, Tensor]: ...


@overload
def sync_constellation_basins(
    active_basin: Tensor,
    observer_basins: Sequence[Tensor],
    ocean_basin: Tensor,
    sync_weight: float = ...,
    *,
    sync_weight_range: tuple[float, float] = ...,
) -> tuple[Tensor, list[Tensor]]: ...


def sync_constellation_basins(
    active_basin: Tensor,
    observer_basins: Tensor | Sequence[Tensor],
    ocean_basin: Tensor,
    sync_weight: float = 0.1,
    *,
    sync_weight_range: tuple[float, float] = (0.05, 0.1),
) -> tuple[Tensor, list[Tensor] | Tensor]:
    """Return ``(ocean_basin, observer_basins)`` after one sync (the spec's signature).

    The Ocean basin is returned detached and cloned: it is measured, never
    updated. Observers move toward ``active.detach()`` by ``sync_weight``, which
    must lie in ``sync_weight_range`` (inclusive). ``observers`` is a list of
    ``(dim,)`` tensors (a list comes back) or a stacked ``(n, dim)`` tensor (a
    tensor comes back); observers keep their autograd history, the active basin
    contributes none.
    """
    active, observers, ocean = active_basin, observer_basins, ocean_basin
    low, high = sync_weight_range
    if not low <= sync_weight <= high:
        raise ValueError(
            f"sync_weight {sync_weight} is outside the configured range [{low}, {high}]"
        )
    if active.dim() != 1 or ocean.shape != active.shape:
        raise ValueError(
            f"active and ocean must be basins of equal shape (dim,), got "
            f"{tuple(active.shape)} and {tuple(ocean.shape)}"
        )
    if isinstance(observers, Tensor):
        stacked = observers
    elif len(observers):
        stacked = torch.stack(list(observers))
    else:
        stacked = active.new_empty(0, active.shape[0])
    if stacked.dim() != 2 or stacked.shape[1] != active.shape[0]:
        raise ValueError(
            f"observers must be (n, {active.shape[0]}), got shape {tuple(stacked.shape)}"
        )
    measured = ocean.detach().clone()
    moved = torch.lerp(stacked, active.detach().to(stacked.dtype), sync_weight)
    if isinstance(observers, Tensor):
        return measured, moved
    return measured, list(moved.unbind(0))
