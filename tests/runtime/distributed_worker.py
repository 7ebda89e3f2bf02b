"""One rank of the distributed-constellation test (run by test_runtime_distributed.py).

    python distributed_worker.py RANK WORLD_SIZE STORE_FILE OUT_DIR CONFIG_JSON

Joins a gloo group through a file store (no TCP rendezvous), syncs once, all-reduces
the Fisher diagonal of a shared replica estimated on this rank's own batch, and saves what it saw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from qig_guard.runtime import QIGKernelRecursive, estimate_fisher_diag
from qig_guard.runtime.distributed import DistributedConstellation, all_reduce_fisher_diag


def main() -> None:
    rank, world = int(sys.argv[1]), int(sys.argv[2])
    store, out, config = sys.argv[3], Path(sys.argv[4]), json.loads(sys.argv[5])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.manual_seed(rank)
        model = QIGKernelRecursive(**config)
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        constellation = DistributedConstellation(model, sync_weight=0.1)
        ocean_basin, targets = constellation.sync()
        ids = torch.randint(
            0, config["vocab_size"], (2, 6), generator=torch.Generator().manual_seed(10 + rank)
        )
        torch.manual_seed(99)  # data parallel: every rank holds the same replica
        fisher = estimate_fisher_diag(QIGKernelRecursive(**config), ids)
        reduced, total = all_reduce_fisher_diag(fisher, ids[:, 1:].numel())
        after = model.state_dict()
        torch.save(  # a rank's results for the test process, not basin files
            {
                "role": constellation.role,
                "ocean_basin": ocean_basin,  # noqa: QIG005
                "targets": targets,
                "own_target": model.basin_matcher.target_basin.clone(),
                "has_target": bool(model.basin_matcher.has_target),
                "weights_unchanged": all(
                    torch.equal(weights[k], after[k]) for k in weights if "target" not in k
                ),
                "grads": [p.grad is not None for p in model.parameters()],
                "ids": ids,
                "reduced": reduced,
                "total": torch.tensor(total),
            },
            out / f"rank{rank}.pt",
        )
        dist.barrier()  # no rank tears the group down while another still uses it
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
