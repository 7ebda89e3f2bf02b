"""Reading and writing basin files (version 1): strict, validated, atomic, never pickle."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import qig_guard
from qig_guard.basin.legacy import detect, legacy_message, not_a_basin
from qig_guard.basin.schema import SCHEMA_VERSION, document_problems
from qig_guard.basin.settings import DEFAULT_DIM
from qig_guard.basin.strictjson import JsonReadError, read_json

DEFAULT_PHYSICS_CONSTANTS: Mapping[str, float] = MappingProxyType(
    {"kappa_eff": 64.21, "beta": 0.44}
)
LOAD_LIMIT = 64 * 1024
_NUMBERS_PER_LINE = 4


class BasinFileError(ValueError):
    """A basin file that cannot be read or written as version 1."""


@dataclass(frozen=True)
class BasinFile:
    """A validated basin file; ``metadata`` is the whole document."""

    basin: tuple[float, ...]
    dim: int
    fisher_diag: tuple[float, ...] | None
    source_model: str
    physics_constants: Mapping[str, float]
    metadata: Mapping[str, Any]


def _raise_problems(path: Path, document: Any, dim: int | None = None) -> None:
    problems = document_problems(document, dim=dim)
    if problems:
        shown = "; ".join(map(str, problems[:5]))
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise BasinFileError(f"{path}: not a valid basin file: {shown}{more}")


def load_basin(path: str | os.PathLike[str], *, max_bytes: int = LOAD_LIMIT) -> BasinFile:
    """Read and validate a version 1 basin file; raises :class:`BasinFileError`."""
    path = Path(path)
    try:
        document = read_json(path, max_bytes).value
    except JsonReadError as error:
        raise BasinFileError(f"{path}:{error}") from None
    kind = detect(document)
    if kind is not None:
        raise BasinFileError(f"{path}: {legacy_message(kind, str(path))}")
    reason = not_a_basin(document)
    if reason is not None:
        raise BasinFileError(f"{path}: not a basin file: {reason}")
    _raise_problems(path, document)
    fisher = document.get("fisher_diag")
    return BasinFile(
        basin=tuple(float(value) for value in document["basin"]),
        dim=int(document["dim"]),
        fisher_diag=None if fisher is None else tuple(float(value) for value in fisher),
        source_model=document["source_model"],
        physics_constants=MappingProxyType(
            {name: float(value) for name, value in document["physics_constants"].items()}
        ),
        metadata=MappingProxyType(document),
    )


def _float(label: str, value: Any) -> float:
    if not isinstance(value, (bool, str, bytes)):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise BasinFileError(f"{label}: expected a number, got {type(value).__name__} {value!r:.40}")


def _floats(name: str, values: Sequence[float]) -> list[float]:
    return [_float(f"{name}[{index}]", value) for index, value in enumerate(values)]


def _numbers_block(values: list[float]) -> str:
    numbers = [json.dumps(value, allow_nan=False) for value in values]
    rows = [
        ", ".join(numbers[start : start + _NUMBERS_PER_LINE])
        for start in range(0, len(numbers), _NUMBERS_PER_LINE)
    ]
    return "[\n    " + ",\n    ".join(rows) + "\n  ]"


def encode(document: Mapping[str, Any]) -> str:
    """The file text: indent 2, keys in the given order, number vectors four to a line."""
    members = []
    for key, value in document.items():
        if key in ("basin", "fisher_diag") and isinstance(value, list) and value:
            text = _numbers_block(value)
        else:
            text = json.dumps(value, indent=2, allow_nan=False, ensure_ascii=False)
            text = text.replace("\n", "\n  ")
        members.append(f"  {json.dumps(key, ensure_ascii=False)}: {text}")
    return "{\n" + ",\n".join(members) + "\n}\n"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, before os.replace
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, mode)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def save_basin(
    path: str | os.PathLike[str],
    basin: Sequence[float],
    *,
    source_model: str,
    extracted_from: str,
    physics_constants: Mapping[str, float] | None = None,
    fisher_diag: Sequence[float] | None = None,
    fisher_estimator: str | None = None,
    fisher_samples: int | None = None,
    checkpoint_sha256: str | None = None,
    training_steps: int | None = None,
    final_Phi: float | None = None,
    regime: str | None = None,
    expected_dim: int | None = DEFAULT_DIM,
    max_size: int | None = None,
) -> Path:
    """Validate and atomically write a version 1 basin file; returns its path.

    ``expected_dim`` is the dimension the basin must have (the spec's 64 by default;
    pass ``basin_settings(config).dim`` for a project's ``[tool.qig-guard.basin] dim``,
    or ``None`` to accept any). A file over ``max_size`` bytes (default: ``basin
    validate``'s default ``max-size``) is refused, so that nothing is written that
    validation rejects.
    """
    path = Path(path)
    vector = _floats("basin", basin)
    constants = DEFAULT_PHYSICS_CONSTANTS if physics_constants is None else physics_constants
    provenance: dict[str, Any] = {"extracted_from": extracted_from}
    if checkpoint_sha256 is not None:
        provenance["checkpoint_sha256"] = checkpoint_sha256
    provenance.update(tool="qig-guard", tool_version=qig_guard.__version__)
    optional: dict[str, Any] = {
        "training_steps": training_steps,
        "final_Phi": final_Phi,
        "regime": regime,
        "fisher_estimator": fisher_estimator,
        "fisher_samples": fisher_samples,
    }
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "source_model": source_model,
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "dim": len(vector),
        "physics_constants": {
            name: _float(f"physics_constants.{name}", value) for name, value in constants.items()
        },
        "provenance": provenance,
        **{key: value for key, value in optional.items() if value is not None},
        "basin": vector,
    }
    if fisher_diag is not None:
        document["fisher_diag"] = _floats("fisher_diag", fisher_diag)
    _raise_problems(path, document, expected_dim)
    data = encode(document).encode("utf-8")
    if max_size is None:
        from qig_guard.basin.settings import BasinSettings

        max_size = BasinSettings.max_size
    if len(data) > max_size:
        raise BasinFileError(
            f"{path}: the basin file would be {len(data)} bytes, over the {max_size}-byte "
            "limit that `qig-guard basin validate` enforces (max-size; a "
            f"{len(vector)}-dimensional basin is too large); not written"
        )
    write_atomically(path, data)
    return path
