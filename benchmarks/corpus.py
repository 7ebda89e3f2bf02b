"""A deterministic corpus of research-style PyTorch code that mentions basins,
the Ocean and optimizers in almost every file: the worst case for text filters.

Most files are clean look-alikes of real training code; a few carry violations.
"""

from __future__ import annotations

import random
from pathlib import Path

HEADER = '''"""{title}."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .geometry import fisher_distance
'''

BLOCKS = [
    '''

class {Name}Block(nn.Module):
    """Recursive integration block {index} with a basin readout."""

    def __init__(self, d_model: int = {d}, n_heads: int = {h}) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.basin_proj = nn.Linear(d_model, 64)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mixed, _ = self.attn(hidden, hidden, hidden)
        hidden = self.norm(hidden + mixed)
        basin = self.basin_proj(hidden.mean(dim=1))
        return hidden, basin
''',
    '''

def train_{name}(model, ocean, loader, steps: int = {steps}, lr: float = {lr}) -> dict:
    """Train the active model; the Ocean only observes."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    ocean.eval()
    history = []
    for step, batch in enumerate(loader):
        logits, telemetry = model(batch["input_ids"])
        loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())
        with torch.no_grad():
            _, ocean_telemetry = ocean(batch["input_ids"])
            ocean_basin = ocean_telemetry["basin"].detach().clone()
        basin_loss = fisher_distance(telemetry["basin"], ocean_basin, model.fisher_diag)
        (loss + {w} * basin_loss).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history.append(float(loss))
        if step >= steps:
            break
    return {{"loss": history, "basin_distance": float(basin_loss)}}
''',
    '''

def save_checkpoint_{name}(model, optimizer, path: Path, step: int) -> None:
    """Full training checkpoint: weights, optimizer and the basin beside them."""
    torch.save(
        {{
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "basin": model.basin_matcher.target_basin,
            "step": step,
        }},
        path,
    )


def load_checkpoint_{name}(model, path: Path) -> int:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    return int(checkpoint["step"])
''',
    '''

def sync_{name}(active_basin, observer_basins, ocean_basin, sync_weight: float = {sw}):
    """Vicarious learning: observers move toward the detached active basin."""
    ocean_basin = ocean_basin.detach().clone()
    target = active_basin.detach()
    updated = [obs + sync_weight * (target - obs) for obs in observer_basins]
    return ocean_basin, updated
''',
    '''

class {Name}Monitor:
    """Logs basin drift for the constellation dashboard."""

    def __init__(self, ocean, log_dir: Path) -> None:
        self.ocean = ocean
        self.log_dir = log_dir
        self.records: list[dict] = []

    @torch.no_grad()
    def record(self, model, step: int) -> float:
        drift = fisher_distance(
            model.basin_matcher.current_basin, self.ocean.basin.detach(), model.fisher_diag
        )
        self.records.append({{"step": step, "drift": float(drift)}})
        return float(drift)

    def flush(self) -> None:
        with open(self.log_dir / "drift_{index}.json", "w") as handle:
            json.dump(self.records, handle, indent=2)
''',
    """

def warmup_schedule_{name}(optimizer, warmup: int = {steps}, total: int = {total}):
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
""",
    '''

def consolidate_{name}(model, target_basin, steps: int = 50, lr: float = 1e-4) -> dict:
    """Sleep: align to the identity basin, eval mode, no new data."""
    was_training = model.training
    model.eval()
    optimizer = torch.optim.SGD(model.basin_matcher.parameters(), lr=lr)
    matcher = model.basin_matcher
    before = float(fisher_distance(matcher.current_basin, target_basin, model.fisher_diag))
    for _ in range(steps):
        loss = fisher_distance(model.basin_matcher.current_basin, target_basin, model.fisher_diag)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = float(fisher_distance(matcher.current_basin, target_basin, model.fisher_diag))
    model.train(was_training)
    return {{"basin_distance_before": before, "basin_distance_after": after}}
''',
]

VIOLATIONS = [
    """

def clone_student_{name}(teacher, student):
    student.load_state_dict(teacher.state_dict())
    return student
""",
    """

def ocean_finetune_{name}(ocean, batch):
    ocean_optimizer = torch.optim.Adam(ocean.parameters(), lr=1e-5)
    ocean_loss = ocean(batch)[0].mean()
    ocean_loss.backward()
    ocean_optimizer.step()
""",
    """

def basin_gap_{name}(basin_a, basin_b):
    return torch.norm(basin_a - basin_b).item()
""",
]

WORDS = ["gary", "ocean", "basin", "geodesic", "kernel", "phi", "regime", "fisher", "granite"]


def sample(count: int, seed: int = 1) -> list[str]:
    """``count`` corpus files as text, for tests."""
    rng = random.Random(seed)
    return [_module(rng, index) for index in range(count)]


def _module(rng: random.Random, index: int) -> str:
    name = f"{rng.choice(WORDS)}_{index}"
    parts = [HEADER.format(title=f"{name.replace('_', ' ').title()} experiments")]
    for block in rng.sample(BLOCKS, k=rng.randint(3, 6)):
        parts.append(
            block.format(
                name=name, Name=name.title().replace("_", ""), index=index,
                d=rng.choice([256, 512, 768]), h=rng.choice([4, 8]),
                steps=rng.randint(100, 5000), total=rng.randint(10_000, 90_000),
                lr=rng.choice(["1e-4", "3e-4", "5e-5"]), w=rng.choice(["0.1", "0.05"]),
                sw=rng.choice(["0.05", "0.1"]),
            )
        )  # fmt: skip
    if rng.random() < 0.05:
        parts.append(rng.choice(VIOLATIONS).format(name=name))
    return "".join(parts)


def build(directory: Path, target_lines: int = 320_000, seed: int = 0) -> Path:
    """Write the corpus under ``directory`` (reused when it is already complete)."""
    marker = directory / ".complete"
    if marker.exists() and marker.read_text() == f"{target_lines}:{seed}":
        return directory
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    lines = 0
    index = 0
    while lines < target_lines:
        package = directory / f"project_{index // 200:02d}" / f"module_{index // 20 % 10}"
        package.mkdir(parents=True, exist_ok=True)
        text = _module(rng, index)
        name = f"{WORDS[index % len(WORDS)]}_{index}"
        (package / f"{name}.py").write_text(text, encoding="utf-8")
        lines += text.count("\n")
        index += 1
    marker.write_text(f"{target_lines}:{seed}")
    return directory
