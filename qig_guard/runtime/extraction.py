"""``extract_basin_from_checkpoint``: a trained model's basin, written as a basin file.

The checkpoint format is decided by content, never by extension: a torch zip
archive (``PK\\x03\\x04``) is read with ``torch.load(..., weights_only=True)``; a
safetensors file (8-byte little-endian header length, then a JSON header) is
parsed here without extra packages. Anything else, legacy pickles included, is
refused; there is no fallback to unsafe loading. File size and tensor count are
capped before any tensor is materialised. Key prefixes added by wrappers
(``module.`` from DDP, ``_orig_mod.`` from ``torch.compile``, ``model.`` from
Lightning), in any combination, are removed.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from qig_guard.basin import save_basin
from qig_guard.basin.verify import file_sha256
from qig_guard.runtime.matcher import fisher_fields
from qig_guard.runtime.model import QIGKernelRecursive
from qig_guard.runtime.modes import evaluation

MAX_BYTES = 4 * 1024**3
MAX_TENSORS = 100_000
MAX_HEADER_BYTES = 100 * 1024**2
TARGET_KEY = "basin_matcher.target_basin"
HAS_TARGET_KEY = "basin_matcher.has_target"
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")
PROVENANCE_PATH_LIMIT = 200
FISHER_KEYS = tuple(
    f"basin_matcher.{name}" for name in ("fisher_diag", "fisher_estimator", "fisher_samples")
)
_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


class CheckpointError(ValueError):
    """A checkpoint that is refused (format, size, corruption) or does not fit the model."""


def _read_safetensors(path: Path, size: int, max_tensors: int) -> dict[str, Tensor]:
    with path.open("rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        if not 2 <= header_len <= min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path}: safetensors header length {header_len} is invalid")
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{path}: safetensors header is not JSON: {error}") from None
        if not isinstance(header, dict):
            raise CheckpointError(f"{path}: safetensors header must be a JSON object")
        header.pop("__metadata__", None)
        if len(header) > max_tensors:
            raise CheckpointError(f"{path}: {len(header)} tensors exceed the cap of {max_tensors}")
        data_start, data_len = 8 + header_len, size - 8 - header_len
        tensors: dict[str, Tensor] = {}
        for name, entry in header.items():
            try:
                dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
                shape = [int(n) for n in entry["shape"]]
                begin, end = (int(n) for n in entry["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise CheckpointError(f"{path}: malformed safetensors entry {name!r}") from None
            numel = 1
            for n in shape:
                numel *= n
            itemsize = torch.empty(0, dtype=dtype).element_size()
            if (
                min(shape, default=0) < 0
                or not 0 <= begin <= end <= data_len
                or (end - begin != numel * itemsize)
            ):
                raise CheckpointError(f"{path}: tensor {name!r} lies outside the data (truncated?)")
            handle.seek(data_start + begin)
            raw = bytearray(handle.read(end - begin))
            flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            tensors[name] = flat.reshape(shape)
    return tensors


def _read_torch_zip(path: Path, max_bytes: int, max_tensors: int) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            storages = sum(1 for info in members if "/data/" in info.filename)
            unpacked = sum(info.file_size for info in members)
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise CheckpointError(f"{path}: corrupt or truncated zip checkpoint: {error}") from None
    if broken is not None:
        raise CheckpointError(f"{path}: corrupt member {broken!r} in zip checkpoint")
    if storages > max_tensors or unpacked > max_bytes:
        raise CheckpointError(
            f"{path}: {storages} storages / {unpacked} bytes exceed the caps "
            f"({max_tensors} tensors, {max_bytes} bytes)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise CheckpointError(
            f"{path}: refused by the weights-only loader (no unsafe fallback): {error}"
        ) from None


def unwrapped_key(key: str) -> str:
    """``key`` without the wrapper prefixes it starts with (any order, any number)."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                key, stripped = key[len(prefix) :], True
    return key


def _unwrap(file: Path, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    unwrapped: dict[str, Tensor] = {}
    for key, value in state.items():
        bare = unwrapped_key(key)
        if bare in unwrapped:
            raise CheckpointError(f"{file}: keys {key!r} and another both unwrap to {bare!r}")
        unwrapped[bare] = value
    return unwrapped


def _provenance_path(path: Path) -> str:
    """The checkpoint path for the provenance, shortened so a basin file stays small."""
    text = str(path)
    if len(text) <= PROVENANCE_PATH_LIMIT:
        return text
    name = path.name
    if len(name) > PROVENANCE_PATH_LIMIT - 4:
        keep = (PROVENANCE_PATH_LIMIT - 5) // 2
        name = f"{name[:keep]}...{name[-keep:]}"
    return f".../{name}"


def load_checkpoint_state(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES, max_tensors: int = MAX_TENSORS
) -> dict[str, Tensor]:
    """The state dict in a checkpoint, read safely by content (see the module docstring).

    A torch checkpoint may wrap the state under ``model_state_dict`` or ``state_dict``;
    wrapper key prefixes are removed (see the module docstring).
    """
    file = Path(path)
    size = file.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{file}: {size} bytes exceed the cap of {max_bytes}")
    with file.open("rb") as handle:
        head = handle.read(9)
    if head[:4] == b"PK\x03\x04":
        loaded = _read_torch_zip(file, max_bytes, max_tensors)
    elif len(head) == 9 and head[8:9] == b"{":
        loaded = _read_safetensors(file, size, max_tensors)
    else:
        raise CheckpointError(
            f"{file}: neither a torch zip checkpoint nor safetensors (legacy pickle "
            "checkpoints are refused; re-save with torch.save or safetensors)"
        )
    state = loaded
    if isinstance(loaded, Mapping):
        for key in ("model_state_dict", "state_dict"):
            if isinstance(loaded.get(key), Mapping):
                state = loaded[key]
                break
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{file}: no state dict of named tensors found")
    if len(state) > max_tensors:
        raise CheckpointError(f"{file}: {len(state)} tensors exceed the cap of {max_tensors}")
    return _unwrap(file, state)


def _stored_target(path: Path, state: Mapping[str, Tensor]) -> Tensor | None:
    target = state.get(TARGET_KEY)
    has_target = state.get(HAS_TARGET_KEY)
    if has_target is not None and has_target.numel() != 1:
        raise CheckpointError(
            f"{path}: {HAS_TARGET_KEY} holds {has_target.numel()} elements; expected one boolean"
        )
    if target is None or (has_target is not None and not bool(has_target)):
        return None
    return target


def _computed_basin(state: Mapping[str, Tensor], model: QIGKernelRecursive | None) -> Tensor:
    if model is None:
        raise CheckpointError(
            "the checkpoint stores no target basin; pass model= (an instance of the "
            "checkpoint's architecture) to compute the basin from its weights"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"the checkpoint does not match {type(model).__name__}: {error}"
        ) from None
    with evaluation(model), torch.no_grad():
        return model.compute_basin()


def extract_basin_from_checkpoint(
    checkpoint_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    model: QIGKernelRecursive | None = None,
    **metadata: Any,
) -> Path:
    """Write the basin of a checkpoint to ``output_path`` as a standard basin file.

    Uses the stored target basin when the checkpoint has one; otherwise loads
    the weights into ``model`` (which is modified) and computes the basin on its
    probes under ``torch.no_grad()`` in eval mode. ``metadata`` goes to
    ``qig_guard.basin.save_basin`` (``source_model`` defaults to the file stem; an
    estimated metric stored in the checkpoint is written as ``fisher_diag``);
    the provenance records the checkpoint path (``extracted_from``, which the
    caller may override; a path longer than 200 characters is shortened to its
    name) and sha256. Returns the file path.
    """
    path = Path(checkpoint_path)
    state = load_checkpoint_state(path)
    basin = _stored_target(path, state)
    if basin is None:
        basin = _computed_basin(state, model)
    if basin.dim() != 1 or not basin.dtype.is_floating_point:
        raise CheckpointError(f"{path}: the basin must be a 1-d float tensor")
    options: dict[str, Any] = {
        "source_model": path.stem,
        "extracted_from": _provenance_path(path),
        "checkpoint_sha256": file_sha256(path),
        "expected_dim": None,  # the model's own basin dimension, whatever it is
    }
    if all(key in state for key in FISHER_KEYS):
        try:
            options.update(fisher_fields(*(state[key] for key in FISHER_KEYS)))
        except (ValueError, RuntimeError) as error:  # an out-of-range or non-scalar buffer
            raise CheckpointError(f"{path}: {error}") from None
    options.update(metadata)
    return save_basin(output_path, basin.detach().cpu().double().tolist(), **options)
