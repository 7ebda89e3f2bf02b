"""Checking a basin file against the checkpoint its provenance names.

A basin file records ``provenance.extracted_from`` and ``provenance.checkpoint_sha256``.
:func:`verify_against_checkpoint` finds that checkpoint, checks its SHA-256, re-extracts
the basin with the runtime reference implementation
(:func:`qig_guard.runtime.extract_basin_from_checkpoint`) and measures the Fisher
distance between the two vectors. Locating and hashing need only the standard
library; torch is imported only for the re-extraction, so this module stays
importable in a bare environment.
"""

from __future__ import annotations

import enum
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qig_guard.basin.files import BasinFile, BasinFileError, load_basin

DEFAULT_TOLERANCE = 1e-6
"""Largest Fisher distance between a file's basin and the re-extracted one that still matches."""
INSTALL_HINT = "pip install 'qig-guard[runtime]'"


class Outcome(enum.Enum):
    """How a verification ended."""

    MATCH = "match"
    DIFFERS = "differs"
    CHECKPOINT_CHANGED = "checkpoint changed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class Verification:
    """The outcome, a message saying why, and the Fisher distance when one was measured."""

    outcome: Outcome
    message: str
    distance: float | None = None
    checkpoint: Path | None = None


def find_checkpoint(basin_path: Path, extracted_from: str, roots: Sequence[Path]) -> list[Path]:
    """Where ``extracted_from`` may lie: itself when absolute, else relative to the basin
    file's folder, then to each of ``roots`` (in that order, without repeats)."""
    named = Path(extracted_from)
    if named.is_absolute():
        return [named]
    candidates: list[Path] = []
    for folder in (basin_path.parent, *roots):
        candidate = folder / named
        if candidate not in candidates:
            candidates.append(candidate)
    return candidates


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reextract(checkpoint: Path, model: Any) -> BasinFile:
    from qig_guard.runtime import extract_basin_from_checkpoint

    with tempfile.TemporaryDirectory(prefix="qig-guard-verify-") as folder:
        written = extract_basin_from_checkpoint(
            checkpoint, Path(folder) / "basin.json", model=model, expected_dim=None
        )
        return load_basin(written)


def _distance(basin: BasinFile, again: BasinFile) -> tuple[float, str]:
    import torch

    from qig_guard.runtime import fisher_distance

    if basin.fisher_diag is not None:
        metric, label = basin.fisher_diag, "the file's fisher_diag"
    elif again.fisher_diag is not None:
        metric, label = again.fisher_diag, "the checkpoint's fisher_diag"
    else:
        metric, label = (1.0,) * basin.dim, "unit metric: neither records a fisher_diag"
    distance = fisher_distance(
        torch.tensor(basin.basin, dtype=torch.float64),
        torch.tensor(again.basin, dtype=torch.float64),
        torch.tensor(metric, dtype=torch.float64),
    )
    return float(distance), label


def verify_against_checkpoint(
    path: str | os.PathLike[str],
    *,
    roots: Sequence[Path] = (),
    model_factory: Callable[[], Any] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Verification:
    """Re-extract the basin of ``path`` from the checkpoint its provenance names.

    Skipped when the checkpoint is absent, the file records no checkpoint SHA-256, or
    torch is missing; ``CHECKPOINT_CHANGED`` when the checkpoint's SHA-256 is not the
    recorded one (nothing is extracted then); ``DIFFERS`` when the Fisher distance
    exceeds ``tolerance``. ``model_factory`` builds the model that a checkpoint without
    a stored target basin is loaded into (the runtime computes the basin on it).
    """
    path = Path(path)
    try:
        basin = load_basin(path)
    except BasinFileError as error:
        return Verification(Outcome.ERROR, str(error))
    provenance = basin.metadata["provenance"]
    extracted_from: str = provenance["extracted_from"]
    candidates = find_checkpoint(path, extracted_from, roots)
    checkpoint = next((candidate for candidate in candidates if candidate.is_file()), None)
    if checkpoint is None:
        looked = ", ".join(str(candidate) for candidate in candidates)
        return Verification(
            Outcome.SKIPPED, f"checkpoint {extracted_from} not found (looked for {looked})"
        )
    recorded = provenance.get("checkpoint_sha256")
    if recorded is None:
        return Verification(
            Outcome.SKIPPED,
            f"no provenance.checkpoint_sha256 to check {checkpoint} against",
            checkpoint=checkpoint,
        )
    actual = file_sha256(checkpoint)
    if actual != recorded:
        return Verification(
            Outcome.CHECKPOINT_CHANGED,
            f"checkpoint changed since extraction: {checkpoint} has SHA-256 {actual}, "
            f"provenance.checkpoint_sha256 is {recorded}",
            checkpoint=checkpoint,
        )
    try:
        import torch  # noqa: F401
    except ImportError as error:
        return Verification(
            Outcome.SKIPPED,
            f"re-extraction needs torch ({INSTALL_HINT}): {error}",
            None,
            checkpoint,
        )
    from qig_guard.runtime import CheckpointError

    try:
        again = _reextract(checkpoint, None if model_factory is None else model_factory())
    except (CheckpointError, BasinFileError) as error:
        hint = ""
        if model_factory is None and "model=" in str(error):
            hint = " (name a model factory in the ini option qig_basin_model_factory)"
        return Verification(
            Outcome.ERROR, f"cannot re-extract the basin: {error}{hint}", checkpoint=checkpoint
        )
    if again.dim != basin.dim:
        return Verification(
            Outcome.DIFFERS,
            f"the basin re-extracted from {checkpoint} has {again.dim} coordinates, "
            f"the file has {basin.dim}",
            checkpoint=checkpoint,
        )
    distance, metric = _distance(basin, again)
    if distance > tolerance:
        return Verification(
            Outcome.DIFFERS,
            f"basin differs from the one re-extracted from {checkpoint}: Fisher distance "
            f"{distance:.6g} > tolerance {tolerance:g} ({metric})",
            distance,
            checkpoint,
        )
    return Verification(
        Outcome.MATCH,
        f"matches the basin re-extracted from {checkpoint} (Fisher distance {distance:.3g})",
        distance,
        checkpoint,
    )
