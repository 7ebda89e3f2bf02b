"""``Constellation``: an active model, observers and the Ocean, synced and saved together.

Each member keeps its own weights; nothing is ever copied between members. A
sync measures every basin on the members' own probes and moves each observer's
*target* toward the active basin (``sync_constellation_basins``) through
``set_target_basin``; observers then reach it by their own training or
consolidation. ``save`` writes one weights-only checkpoint per member plus its
current and target basins as standard basin files; ``load`` rebuilds each member
from its own files and checks that its recomputed basin matches the saved one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from qig_guard.basin import load_basin, save_basin
from qig_guard.runtime.extraction import load_checkpoint_state
from qig_guard.runtime.model import QIGKernelRecursive
from qig_guard.runtime.modes import evaluation
from qig_guard.runtime.sync import sync_constellation_basins

MANIFEST = "constellation.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MANIFEST_LIMIT = 1024 * 1024


def _basin(model: QIGKernelRecursive) -> Tensor:
    with evaluation(model), torch.no_grad():
        return model.compute_basin()


class Constellation:
    """Coordinator of ``members`` (the first is active, the rest observe) and the Ocean."""

    def __init__(
        self,
        active: QIGKernelRecursive,
        observers: Sequence[QIGKernelRecursive],
        ocean: QIGKernelRecursive,
        *,
        names: Sequence[str] | None = None,
        sync_weight: float = 0.1,
        sync_weight_range: tuple[float, float] = (0.05, 0.1),
    ) -> None:
        self.members = [active, *observers]
        self.ocean = ocean
        all_models = [*self.members, ocean]
        if len({id(m) for m in all_models}) != len(all_models):
            raise ValueError("every member and the Ocean must be a distinct model")
        self.names = (
            [f"gary-{i}" for i in range(len(self.members))] + ["ocean"]
            if names is None
            else list(names)
        )
        if len(self.names) != len(all_models) or len(set(self.names)) != len(self.names):
            raise ValueError("names must give one distinct name per member, Ocean last")
        for name in self.names:
            if not _NAME.fullmatch(name):
                raise ValueError(f"member name {name!r} is not a safe file name")
        self.sync_weight = sync_weight
        self.sync_weight_range = sync_weight_range
        self.active_index = 0

    @property
    def active(self) -> QIGKernelRecursive:
        """The member currently acting (learning from experience)."""
        return self.members[self.active_index]

    @property
    def observers(self) -> list[QIGKernelRecursive]:
        """Every other member, in order."""
        return [m for i, m in enumerate(self.members) if i != self.active_index]

    def sync(self) -> tuple[Tensor, list[Tensor]]:
        """One vicarious-learning sync; returns ``(ocean_basin, observer_targets)``."""
        observers = self.observers
        ocean_basin, targets = sync_constellation_basins(
            _basin(self.active),
            [_basin(m) for m in observers],
            _basin(self.ocean),
            self.sync_weight,
            sync_weight_range=self.sync_weight_range,
        )
        for model, target in zip(observers, targets, strict=True):
            model.basin_matcher.set_target_basin(target)
        return ocean_basin, targets

    def rotate(self) -> QIGKernelRecursive:
        """Hand the active role to the next member; returns the new active model."""
        self.active_index = (self.active_index + 1) % len(self.members)
        return self.active

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write each member's checkpoint and basin files plus a manifest; returns the manifest."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        entries: list[dict[str, Any]] = []
        for name, model in zip(self.names, [*self.members, self.ocean], strict=True):
            checkpoint = root / f"{name}.pt"
            torch.save(model.state_dict(), checkpoint)
            save_basin(
                root / f"{name}.basin.json",
                _basin(model).cpu().double().tolist(),
                source_model=name,
                extracted_from=checkpoint.name,
                expected_dim=None,  # the members' own dimension
            )
            matcher = model.basin_matcher
            if bool(matcher.has_target):
                save_basin(
                    root / f"{name}.target.basin.json",
                    matcher.target_basin.cpu().double().tolist(),
                    source_model=name,
                    extracted_from=checkpoint.name,
                    expected_dim=None,
                    **matcher.fisher_fields(),
                )
            entries.append(
                {"name": name, "config": model.config, "has_target": bool(matcher.has_target)}
            )
        manifest = {
            "format": "qig-guard-constellation",
            "version": 1,
            "active": self.names[self.active_index],
            "sync_weight": self.sync_weight,
            "sync_weight_range": list(self.sync_weight_range),
            "members": entries,
        }
        path = root / MANIFEST
        path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, atol: float = 1e-4) -> Constellation:
        """Rebuild a saved constellation; each member from its own files only.

        ``path`` is what ``save`` returned (the manifest) or its directory.
        Raises ``ValueError`` when a member's recomputed basin differs from its
        saved basin file by more than ``atol`` (a checkpoint and basin out of step).
        """
        root = Path(path)
        if root.name == MANIFEST and root.is_file():
            root = root.parent
        raw = (root / MANIFEST).read_bytes()
        if len(raw) > _MANIFEST_LIMIT:
            raise ValueError(f"{root / MANIFEST} is larger than {_MANIFEST_LIMIT} bytes")
        manifest = json.loads(raw)
        if manifest.get("format") != "qig-guard-constellation" or manifest.get("version") != 1:
            raise ValueError(f"{root / MANIFEST} is not a version 1 constellation manifest")
        names: list[str] = [entry["name"] for entry in manifest["members"]]
        models: list[QIGKernelRecursive] = []
        for entry in manifest["members"]:
            name = entry["name"]
            if not _NAME.fullmatch(name):
                raise ValueError(f"member name {name!r} is not a safe file name")
            model = QIGKernelRecursive(**entry["config"])
            model.load_state_dict(load_checkpoint_state(root / f"{name}.pt"), strict=True)
            if entry["has_target"]:
                model.basin_matcher.set_target_basin(root / f"{name}.target.basin.json")
            saved = torch.tensor(load_basin(root / f"{name}.basin.json").basin)
            if not torch.allclose(_basin(model).cpu().double(), saved.double(), atol=atol):
                raise ValueError(f"{name}: restored basin differs from {name}.basin.json")
            models.append(model)
        low, high = manifest["sync_weight_range"]
        constellation = cls(
            models[0],
            models[1:-1],
            models[-1],
            names=names,
            sync_weight=float(manifest["sync_weight"]),
            sync_weight_range=(float(low), float(high)),
        )
        constellation.active_index = names.index(manifest["active"])
        return constellation
