"""A constellation spread over processes with torch.distributed: one member per rank.

    torchrun --standalone --nproc_per_node 3 examples/distributed_constellation.py

Without torchrun's TCP rendezvous, start each rank yourself with ``RANK`` and
``WORLD_SIZE`` set and ``--store FILE`` (a file every rank can reach, e.g. on a
shared file system; it must not exist yet).

Rank 0 is the active model, the middle ranks observe, the last rank is the Ocean
(gloo on CPU, NCCL when CUDA is available). The active model learns from a little
experience; a sync all-gathers the basins (64 numbers per rank, never weights) and
moves each observer's target 10% of the way toward the active basin; observers
then consolidate toward their new target during "sleep", and the Ocean only
measures. Rank 0 prints each rank's Fisher distance to the active basin before
and after. Runs on a laptop CPU in well under a minute.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch
import torch.distributed as dist

from qig_guard.runtime import (
    QIGKernelRecursive,
    consolidate_toward_basin,
    estimate_fisher_diag,
    fisher_distance,
)
from qig_guard.runtime.distributed import DistributedConstellation, default_backend

VOCAB = 64
SIZE: dict[str, Any] = {
    "d_model": 96,
    "vocab_size": VOCAB,
    "n_heads": 4,
    "min_recursion_depth": 2,
    "max_recursion_depth": 2,
    "dropout": 0.0,
}


def experience(model: QIGKernelRecursive, steps: int, device: torch.device) -> None:
    """The active member's own training: next-token prediction on counting sequences."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        start = torch.randint(0, VOCAB, (16, 1), device=device)
        ids = (start + torch.arange(24, device=device)) % VOCAB
        logits, _ = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        optimizer.step()


def share_active_metric(constellation: DistributedConstellation) -> None:
    """The active member estimates its Fisher metric; every member adopts it."""
    model = constellation.model
    if constellation.role == "active":
        estimate_fisher_diag(model, install=True)
    metric = model.basin_matcher.fisher_diag.detach().clone()
    samples = model.basin_matcher.fisher_samples.clone()
    dist.broadcast(metric, src=constellation.active_rank)
    dist.broadcast(samples, src=constellation.active_rank)
    if constellation.role != "ocean":
        model.basin_matcher.set_fisher_diag(metric, "empirical", int(samples))


def distances_to_active(constellation: DistributedConstellation) -> torch.Tensor:
    """Every rank's Fisher distance to the active basin (the active metric), on every rank."""
    basins = constellation.gather_basins()
    active = basins[constellation.active_rank]
    metric = constellation.model.basin_matcher.fisher_diag.detach().clone()
    dist.broadcast(metric, src=constellation.active_rank)  # the Ocean's buffers stay its own
    return fisher_distance(basins, active.expand_as(basins), metric)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", help="rendezvous file instead of torchrun's TCP store")
    args = parser.parse_args()
    started = time.perf_counter()
    backend = default_backend()
    if args.store:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        store = f"file://{os.path.abspath(args.store)}"
        dist.init_process_group(backend, init_method=store, rank=rank, world_size=world)
    else:
        dist.init_process_group(backend)
    rank = dist.get_rank()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if backend != "nccl":
        device = torch.device("cpu")
        torch.set_num_threads(1)
    try:
        torch.manual_seed(rank)  # every member starts from its own random weights
        model = QIGKernelRecursive(**SIZE).to(device)
        constellation = DistributedConstellation(model, sync_weight=0.1)
        if constellation.role == "active":
            experience(model, steps=30, device=device)
        share_active_metric(constellation)
        before = distances_to_active(constellation)
        constellation.sync()
        if constellation.role == "observer":
            target = model.basin_matcher.target_basin
            consolidate_toward_basin(model, target, steps=5)
        after = distances_to_active(constellation)
        if rank == 0:
            print(f"{backend}, {constellation.world_size} ranks; distance to the active basin:")
            print(f"{'rank':>4}  {'role':<8}  {'before':>8}  {'after':>8}  {'ratio':>6}")
            for r in range(constellation.world_size):
                role = constellation.role_of(r)
                ratio = f"{float(after[r] / before[r]):6.3f}" if float(before[r]) > 0 else "     -"
                line = f"{r:>4}  {role:<8}  {float(before[r]):8.4f}  {float(after[r]):8.4f}"
                print(f"{line}  {ratio}")
            print(f"finished in {time.perf_counter() - started:.1f} s")
        dist.barrier()  # no rank tears the group down while another still uses it
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
