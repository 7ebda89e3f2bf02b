"""Torch reference implementations of the basin-transfer practice (``qig-guard[runtime]``).

This package imports torch; nothing else in ``qig_guard`` does.
"""

from qig_guard.runtime.consolidation import ConsolidationStats, consolidate_toward_basin
from qig_guard.runtime.constellation import Constellation
from qig_guard.runtime.extraction import (
    CheckpointError,
    extract_basin_from_checkpoint,
    load_checkpoint_state,
)
from qig_guard.runtime.fisher import estimate_fisher_diag
from qig_guard.runtime.geometry import (
    fisher_distance,
    fisher_geodesic,
    fisher_rao_distance,
    fisher_rao_geodesic,
)
from qig_guard.runtime.guards import (
    FrozenParameterError,
    WeightSharingError,
    assert_no_weight_sharing,
    frozen,
)
from qig_guard.runtime.matcher import BasinMatcher
from qig_guard.runtime.model import QIGKernelRecursive, Telemetry, initialize_with_basin
from qig_guard.runtime.sync import sync_constellation_basins
from qig_guard.runtime.transfer import TransferStats, transfer_basin

__all__ = [
    "BasinMatcher",
    "CheckpointError",
    "ConsolidationStats",
    "Constellation",
    "FrozenParameterError",
    "QIGKernelRecursive",
    "Telemetry",
    "TransferStats",
    "WeightSharingError",
    "assert_no_weight_sharing",
    "consolidate_toward_basin",
    "estimate_fisher_diag",
    "extract_basin_from_checkpoint",
    "fisher_distance",
    "fisher_geodesic",
    "fisher_rao_distance",
    "fisher_rao_geodesic",
    "frozen",
    "initialize_with_basin",
    "load_checkpoint_state",
    "sync_constellation_basins",
    "transfer_basin",
]
