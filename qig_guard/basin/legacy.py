"""Legacy basin shapes: recognising them and converting them to version 1.

Three older shapes exist in the wild:

- the cross-repository **sync packet** (camelCase: ``oceanId``, ``basinCoordinates``,
  ``consciousness``, plus search history that has no place in an identity file);
- the **pre-version-1** file the spec's extraction template writes (``basin``, ``dim``,
  ``extracted_from``, ``timestamp``; no ``schema_version``);
- the **identity descriptor** (``regime_distribution``, ``beta_function``, ...), which holds
  no coordinate vector and so cannot become a basin file.

Conversion never invents a value: what the legacy file lacks is reported as missing
unless the caller supplies it, and supplied fields are recorded in the provenance.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from qig_guard.basin.fields import ALIASES
from qig_guard.basin.schema import SCHEMA_VERSION, parse_timestamp

DESCRIPTOR_KEYS = ("regime_distribution", "attention_patterns", "beta_function", "target_metrics")
REQUIRED = (
    "basin",
    "source_model",
    "timestamp",
    "physics_constants.kappa_eff",
    "physics_constants.beta",
    "provenance.extracted_from",
)
OPTIONAL = ("training_steps", "final_Phi", "regime", "fisher_diag")


class LegacyKind(Enum):
    """A legacy shape; the value is the name recorded in ``provenance.converted_from``."""

    SYNC_PACKET = "sync-packet"
    PRE_V1 = "pre-v1"
    IDENTITY_DESCRIPTOR = "identity-descriptor"


_DESCRIPTIONS = {
    LegacyKind.SYNC_PACKET: "a legacy cross-repository sync packet (oceanId, basinCoordinates, "
    "consciousness, search history)",
    LegacyKind.PRE_V1: "a pre-version-1 basin file (no schema_version)",
    LegacyKind.IDENTITY_DESCRIPTOR: "a legacy identity descriptor (regime_distribution, "
    "attention_patterns, beta_function, target_metrics)",
}

_SYNC_MAP: tuple[tuple[tuple[str, ...], str], ...] = (
    (("basinCoordinates",), "basin"),
    (("oceanId",), "source_model"),
    (("timestamp",), "timestamp"),
    (("consciousness", "kappaEff"), "physics_constants.kappa_eff"),
    (("beta",), "physics_constants.beta"),
    (("consciousness", "phi"), "final_Phi"),
    (("regime",), "regime"),
    (("version",), "provenance.converted_from.version"),
)
_PRE_V1_FIELDS = (
    "basin",
    "dim",
    "source_model",
    "timestamp",
    "training_steps",
    "final_Phi",
    "regime",
    "fisher_diag",
    "fisher_estimator",
    "fisher_samples",
)
_PRE_V1_PROVENANCE = ("extracted_from", "checkpoint_sha256", "tool", "tool_version")


def describe(kind: LegacyKind) -> str:
    """What ``kind`` is, in words."""
    return _DESCRIPTIONS[kind]


def detect(document: Any) -> LegacyKind | None:
    """The legacy shape of a parsed document, or ``None`` (version 1 or unrecognised)."""
    if not isinstance(document, dict) or "schema_version" in document:
        return None
    if "basinCoordinates" in document or {"oceanId", "consciousness"} <= document.keys():
        return LegacyKind.SYNC_PACKET
    if "basin" in document:
        return LegacyKind.PRE_V1
    if any(key in document for key in DESCRIPTOR_KEYS):
        return LegacyKind.IDENTITY_DESCRIPTOR
    return None


def not_a_basin(document: Any) -> str | None:
    """Why ``document`` is no basin file at all (neither version 1, broken or not, nor a
    legacy shape), or ``None`` when it is meant as one."""
    if not isinstance(document, dict):
        kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
        return f"the document is {kinds.get(type(document), 'a number')}, not a JSON object"
    if "schema_version" in document or "basin" in document or detect(document) is not None:
        return None
    keys = ", ".join(list(document)[:6]) + (", ..." if len(document) > 6 else "")
    return (
        "it has no `basin` vector, no `schema_version` and no legacy basin shape "
        f"(top-level keys: {keys or 'none'})"
    )


def _not_convertible(kind: LegacyKind) -> str:
    return (
        f"{describe(kind)} holds no basin coordinate vector: it describes how a model "
        "behaves, not where its identity sits, and the 64 coordinates cannot be derived "
        "from it without the model; extract the basin from the model's checkpoint "
        "(qig_guard.basin.save_basin) instead"
    )


def legacy_message(kind: LegacyKind, path: str = "OLD.json") -> str:
    """The validator's message for a legacy file at ``path``."""
    if kind is LegacyKind.IDENTITY_DESCRIPTOR:
        return f"not a basin file: {_not_convertible(kind)}"
    return (
        f"{describe(kind)}, not a version 1 basin file: convert it with "
        f"`qig-guard basin convert {shlex.quote(path)} -o NEW.json`"
    )


@dataclass
class Conversion:
    """The outcome of converting one legacy document."""

    kind: LegacyKind
    document: dict[str, Any] | None = None
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    error: str | None = None


def normalise_timestamp(value: Any) -> str | None:
    """An ISO 8601 string or epoch number (seconds or JavaScript milliseconds) as isoformat."""
    try:
        if isinstance(value, str):
            return parse_timestamp(value).isoformat()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                return None
            seconds = value / 1000 if abs(value) >= 1e11 else value
            return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _get(document: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = document
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _set(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        document = document.setdefault(key, {})
    document[last] = value


def _flatten_single_row(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        return value[0]
    return value


def _sync_packet(document: Mapping[str, Any], result: Conversion) -> dict[str, Any]:
    out: dict[str, Any] = {}
    used: set[tuple[str, ...]] = set()
    for source, target in _SYNC_MAP:
        value = _get(document, source)
        if value is not None:
            _set(out, target, value)
            used.add(source)
            result.kept.append(f"{'.'.join(source)} -> {target}")
    for key, value in document.items():
        if isinstance(value, Mapping) and any(path[0] == key for path in used):
            result.dropped += [f"{key}.{sub}" for sub in value if (key, sub) not in used]
        elif (key,) not in used:
            result.dropped.append(key)
    return out


def _pre_v1(document: Mapping[str, Any], result: Conversion) -> dict[str, Any]:
    out: dict[str, Any] = {}
    provenance = document.get("provenance")
    provenance = provenance if isinstance(provenance, Mapping) else {}
    for key in _PRE_V1_FIELDS:
        if key in document:
            out[key] = document[key]
            result.kept.append(key)
    if isinstance(document.get("physics_constants"), Mapping):
        out["physics_constants"] = dict(document["physics_constants"])
        result.kept.append("physics_constants")
    for key in _PRE_V1_PROVENANCE:
        value = document.get(key, provenance.get(key))
        if value is not None:
            _set(out, f"provenance.{key}", value)
            result.kept.append(f"{key} -> provenance.{key}")
    kept = {*_PRE_V1_FIELDS, *_PRE_V1_PROVENANCE, "physics_constants", "provenance"}
    result.dropped += [key for key in document if key not in kept]
    result.dropped += [f"provenance.{key}" for key in provenance if key not in _PRE_V1_PROVENANCE]
    return out


def convert(
    document: Any,
    *,
    path: str,
    sha256: str,
    supplied: Mapping[str, Any] | None = None,
) -> Conversion:
    """Map a legacy document onto version 1; ``supplied`` fills only fields it lacks.

    ``supplied`` keys are dotted field names as the messages name them
    (``source_model``, ``timestamp``, ``provenance.extracted_from``,
    ``physics_constants.kappa_eff``...; ``extracted_from`` is an alias). The returned
    document still has to be validated.
    """
    kind = detect(document)
    if kind is None:
        raise ValueError("not a recognised legacy basin shape")
    result = Conversion(kind)
    if kind is LegacyKind.IDENTITY_DESCRIPTOR:
        result.error = f"cannot convert: {_not_convertible(kind)}"
        return result
    if kind is LegacyKind.SYNC_PACKET:
        out = _sync_packet(document, result)
        out.setdefault("provenance", {})["extracted_from"] = path
    else:
        out = _pre_v1(document, result)
    out["basin"] = _flatten_single_row(out.get("basin"))
    if isinstance(out["basin"], list) and "dim" not in out:
        out["dim"] = len(out["basin"])
    original_timestamp = out.get("timestamp")
    if original_timestamp is not None:
        out["timestamp"] = normalise_timestamp(original_timestamp)
    converted_from: dict[str, Any] = {"format": kind.value, "path": path, "sha256": sha256}
    converted_from.update(out.get("provenance", {}).pop("converted_from", {}))
    if out.get("timestamp") != original_timestamp:
        converted_from["timestamp"] = original_timestamp
    supplied_names = []
    for name, value in (supplied or {}).items():
        target = ALIASES.get(name, name)
        if _get(out, tuple(target.split("."))) is None:
            _set(out, target, value)
            supplied_names.append(target)
    if supplied_names:
        converted_from["supplied"] = supplied_names
    result.missing = [name for name in REQUIRED if _get(out, tuple(name.split("."))) is None]
    result.absent = [name for name in OPTIONAL if name not in out]
    if result.missing:
        result.error = (
            f"cannot convert: {describe(kind)} lacks {', '.join(result.missing)}; "
            "supply what you know with --set FIELD=VALUE (never a guess)"
        )
        return result
    _set(out, "provenance.converted_from", converted_from)
    order = ("schema_version", "source_model", "timestamp", "dim", "physics_constants")
    result.document = {
        "schema_version": SCHEMA_VERSION,
        **{key: out[key] for key in order[1:] if key in out},
        **{key: value for key, value in out.items() if key not in {*order, "basin"}},
        "basin": out["basin"],
    }
    if "fisher_diag" in result.document:
        result.document["fisher_diag"] = result.document.pop("fisher_diag")
    return result
