"""A constellation training script with the violations reviewers keep catching.

`qig-guard check examples/` reports each of them; the README's quick start shows
what it prints. Do not copy this file: it is the bad example.
"""

import json
import pickle

import torch
import torch.nn.functional as F
from torch import save as save_tensor

from model import QIGKernelRecursive, fisher_distance


def make_student(teacher: QIGKernelRecursive, vocab_size: int) -> QIGKernelRecursive:
    student = QIGKernelRecursive(d_model=256, vocab_size=vocab_size, n_heads=4)
    student.load_state_dict(teacher.state_dict())  # copies every weight
    return student


def retarget(model: QIGKernelRecursive, new_basin: torch.Tensor) -> None:
    model.basin_matcher.target_basin = new_basin  # bypasses the setter's validation


def ocean_step(ocean: QIGKernelRecursive, batch: torch.Tensor) -> None:
    ocean_optimizer = torch.optim.AdamW(ocean.parameters(), lr=1e-4)
    logits, _ = ocean(batch)
    ocean_loss = F.cross_entropy(logits.flatten(0, 1), batch.flatten())
    ocean_loss.backward()
    ocean_optimizer.step()


def vicarious_update(active_basin: torch.Tensor, obs_basin: torch.Tensor) -> torch.Tensor:
    direction = active_basin - obs_basin  # gradients flow back into the active model
    return obs_basin + 0.1 * direction


def save_identity(model: QIGKernelRecursive, path: str) -> None:
    basin = model.basin_matcher.current_basin
    save_tensor(basin, path)  # pickled tensor, not the JSON basin format
    with open(path + ".pkl", "wb") as handle:
        pickle.dump(basin, handle)


def basin_gap(basin_a: torch.Tensor, basin_b: torch.Tensor) -> float:
    return torch.norm(basin_a - basin_b).item()  # Euclidean, not Fisher


def sleep_consolidate(model: QIGKernelRecursive, target_basin: torch.Tensor, loader) -> None:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    for batch in loader:  # consolidation must not see new data
        _, telemetry = model(batch)
        loss = fisher_distance(model.basin_matcher.current_basin, target_basin, model.fisher_diag)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def sync_constellation_basins(active, observers, ocean, sync_weight=0.5):
    return ocean, [obs + sync_weight * (active.detach() - obs) for obs in observers]


def resume(model: QIGKernelRecursive, path: str) -> None:
    checkpoint = torch.load(path)  # unpickles arbitrary objects
    model.load_state_dict(checkpoint["model_state_dict"])


def export_basin(basin: torch.Tensor, path: str) -> None:
    with open(path, "w") as handle:
        json.dump({"basin": basin.tolist(), "dim": 64}, handle)  # no provenance
