"""A constellation across processes and machines, on ``torch.distributed``.

Each member (the active model, the observers, the Ocean) is its own rank and
holds only its own weights. A sync all-gathers every member's basin (``basin_dim``
numbers per rank), then every rank applies the same ``sync_constellation_basins``
to the gathered basins, so observers' targets move exactly as in the
single-process ``Constellation.sync``; each observer installs its own new target.
The Ocean rank only contributes its measured basin, under ``frozen``: it never
receives a gradient or an update. Weights never cross ranks.

``all_reduce_fisher_diag`` averages a Fisher diagonal over data-parallel ranks,
weighted by each rank's sample count. Backends: gloo on the CPU, NCCL on CUDA
(``default_backend``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor

from qig_guard.runtime.geometry import wide_dtype
from qig_guard.runtime.guards import frozen
from qig_guard.runtime.model import QIGKernelRecursive
from qig_guard.runtime.modes import evaluation
from qig_guard.runtime.sync import sync_constellation_basins

Role = Literal["active", "observer", "ocean"]


def default_backend() -> str:
    """``"nccl"`` when CUDA is available, else ``"gloo"``."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def _measured_basin(model: QIGKernelRecursive) -> Tensor:
    with evaluation(model), torch.no_grad():
        return model.compute_basin().float()


class DistributedConstellation:
    """This rank's member of a constellation spread over a process group.

    Ranks ``0 .. world_size - 2`` are members (``active_rank`` acts, the others
    observe); the last rank is the Ocean. Call ``sync`` on every rank together.
    """

    def __init__(
        self,
        model: QIGKernelRecursive,
        *,
        group: dist.ProcessGroup | None = None,
        active_rank: int = 0,
        sync_weight: float = 0.1,
        sync_weight_range: tuple[float, float] = (0.05, 0.1),
    ) -> None:
        if not dist.is_initialized():
            raise RuntimeError("initialise torch.distributed first (init_process_group)")
        self.model = model
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        if self.world_size < 2:
            raise ValueError("a distributed constellation needs at least two ranks")
        self.ocean_rank = self.world_size - 1
        if not 0 <= active_rank < self.ocean_rank:
            raise ValueError(f"active_rank must be a member rank in [0, {self.ocean_rank})")
        self.active_rank = active_rank
        self.sync_weight = sync_weight
        self.sync_weight_range = sync_weight_range

    @property
    def role(self) -> Role:
        """What this rank is now: ``"active"``, ``"observer"`` or ``"ocean"``."""
        return self.role_of(self.rank)

    def role_of(self, rank: int) -> Role:
        """What ``rank`` is now."""
        if rank == self.ocean_rank:
            return "ocean"
        return "active" if rank == self.active_rank else "observer"

    @property
    def observer_ranks(self) -> list[int]:
        """The member ranks other than the active one, in order."""
        return [r for r in range(self.ocean_rank) if r != self.active_rank]

    def gather_basins(self) -> Tensor:
        """Every rank's basin on its own probes, ``(world_size, basin_dim)`` float32."""
        if self.role == "ocean":
            with frozen(self.model):
                basin = _measured_basin(self.model)
        else:
            basin = _measured_basin(self.model)
        gathered = [torch.empty_like(basin) for _ in range(self.world_size)]
        dist.all_gather(gathered, basin, group=self.group)
        return torch.stack(gathered)

    def sync(self) -> tuple[Tensor, Tensor]:
        """One vicarious-learning sync; returns ``(ocean_basin, observer_targets)``.

        ``observer_targets`` is ``(n_observers, basin_dim)`` in ``observer_ranks``
        order, identical on every rank; an observer sets its own row as its target.
        """
        basins = self.gather_basins()
        observers = self.observer_ranks
        ocean_basin, targets = sync_constellation_basins(
            basins[self.active_rank],
            basins[observers],
            basins[self.ocean_rank],
            self.sync_weight,
            sync_weight_range=self.sync_weight_range,
        )
        if self.role == "observer":
            self.model.basin_matcher.set_target_basin(targets[observers.index(self.rank)])
        return ocean_basin, targets

    def rotate(self) -> int:
        """Hand the active role to the next member rank (on every rank); returns it."""
        self.active_rank = (self.active_rank + 1) % self.ocean_rank
        return self.active_rank


def all_reduce_fisher_diag(
    fisher_diag: Tensor, samples: int, *, group: dist.ProcessGroup | None = None
) -> tuple[Tensor, int]:
    """The sample-weighted mean of every rank's Fisher diagonal, and the total samples.

    Equal to the estimate on all ranks' data pooled, for estimators that average
    over tokens (all of ``estimate_fisher_diag``'s). Call on every rank together.
    """
    if samples < 1:
        raise ValueError("samples must be >= 1")
    wide = wide_dtype(fisher_diag)
    count = torch.tensor([float(samples)], dtype=wide, device=fisher_diag.device)
    packed = torch.cat([fisher_diag.detach().to(wide) * samples, count])
    dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=group)
    total = float(packed[-1])
    return (packed[:-1] / total).to(fisher_diag.dtype), round(total)
