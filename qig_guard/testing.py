"""Assertion helpers for the basin-transfer invariants, for use in pytest tests.

Importing this module never imports torch; the helpers that need it import it
when called. The qig-guard pytest plugin registers assertion rewriting for this
module, and every helper hides its own frame, so a failure points at the test.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch.optim import Optimizer

    from qig_guard.config import Config

__all__ = [
    "assert_basin_close",
    "assert_basin_matches_checkpoint",
    "assert_consolidation_improves",
    "assert_detached",
    "assert_fisher_distance_decreases",
    "assert_no_weight_copy",
    "assert_ocean_frozen",
    "assert_valid_basin_file",
]


def assert_valid_basin_file(path: str | os.PathLike[str], config: Config | None = None) -> None:
    """The file passes ``qig-guard basin validate`` under ``config`` (default: the
    ``[tool.qig-guard]`` configuration found from the current directory)."""
    __tracebackhide__ = True
    from qig_guard.basin import validate_basin_file
    from qig_guard.config import discover
    from qig_guard.engine.report import text_line

    findings = validate_basin_file(path, config or discover())
    problems = [text_line(finding) for finding in findings]
    assert not problems, "not a valid basin file:\n" + "\n".join(problems)


def assert_basin_matches_checkpoint(
    path: str | os.PathLike[str],
    *,
    model_factory: Callable[[], Any] | None = None,
    tolerance: float = 1e-6,
) -> None:
    """The basin file is the basin the runtime re-extracts from the checkpoint its
    provenance names, within ``tolerance`` in Fisher distance; the checkpoint must be
    there and unchanged (see ``qig_guard.basin.verify``)."""
    __tracebackhide__ = True
    from qig_guard.basin.verify import Outcome, verify_against_checkpoint

    verification = verify_against_checkpoint(path, model_factory=model_factory, tolerance=tolerance)
    assert verification.outcome is Outcome.MATCH, f"{path}: {verification.message}"


def _attachment(tensor: Any) -> str | None:
    """Why ``tensor`` is attached to autograd, or ``None`` when it is detached."""
    if getattr(tensor, "grad_fn", None) is not None:
        return f"it has grad_fn={type(tensor.grad_fn).__name__}"
    if getattr(tensor, "requires_grad", False):
        return "it requires grad"
    return None


def assert_detached(tensor: Tensor, name: str = "tensor") -> None:
    """``tensor`` neither requires grad nor hangs off an autograd graph."""
    __tracebackhide__ = True
    why = _attachment(tensor)
    assert why is None, f"{name} is not detached: {why}; use .detach() (or .detach().clone())"


def _optimizer_holders(params: Mapping[int, str], optimizers: Sequence[Optimizer]) -> list[str]:
    found = []
    for index, optimizer in enumerate(optimizers):
        held = [
            params[id(param)]
            for group in optimizer.param_groups
            for param in group["params"]
            if id(param) in params
        ]
        if held:
            label = f"optimizer #{index} ({type(optimizer).__name__})"
            found.append(f"{label} holds {', '.join(held)}")
    return found


def assert_ocean_frozen(ocean: nn.Module | Tensor, *optimizers: Optimizer) -> None:
    """The Ocean cannot train: no optimizer holds its parameters, none requires grad,
    and its basin (a tensor, or every buffer of a module) is detached."""
    __tracebackhide__ = True
    import torch

    problems: list[str] = []
    if isinstance(ocean, torch.Tensor):
        params = {id(ocean): "the ocean basin"}
        why = _attachment(ocean)
        if why is not None:
            problems.append(f"the ocean basin is not detached: {why}")
    else:
        params = {id(param): name for name, param in ocean.named_parameters()}
        trainable = [name for name, param in ocean.named_parameters() if param.requires_grad]
        if trainable:
            problems.append(f"parameters require grad: {', '.join(trainable)}")
        for name, buffer in ocean.named_buffers():
            why = _attachment(buffer)
            if why is not None:
                problems.append(f"buffer {name} is not detached: {why}")
    problems.extend(_optimizer_holders(params, optimizers))
    assert not problems, "the Ocean is not frozen:\n  " + "\n  ".join(problems)


def assert_no_weight_copy(student: nn.Module, teacher: nn.Module) -> None:
    """The student neither shares storage with nor holds copies of the teacher's weights
    (constant tensors, such as a fresh LayerNorm's ones, do not count)."""
    __tracebackhide__ = True
    from qig_guard.runtime.guards import WeightSharingError, assert_no_weight_sharing

    message = None
    try:
        assert_no_weight_sharing(student, teacher)
    except WeightSharingError as error:
        message = str(error)
    assert message is None, f"student copies the teacher's weights: {message}"


def _number(label: str, value: Any) -> float:
    __tracebackhide__ = True
    number = float(value)
    assert math.isfinite(number), f"{label} is not finite: {number!r}"
    return number


def assert_fisher_distance_decreases(before: float | Tensor, after: float | Tensor) -> None:
    """The Fisher distance to the target went down (both values finite)."""
    __tracebackhide__ = True
    distance_before = _number("distance before", before)
    distance_after = _number("distance after", after)
    assert distance_after < distance_before, (
        f"Fisher distance did not decrease: {distance_before!r} -> {distance_after!r}"
    )


STATS_KEYS = ("basin_distance_before", "basin_distance_after", "consolidation_improvement")


def assert_consolidation_improves(stats: Mapping[str, Any]) -> None:
    """Sleep consolidation statistics show a real, consistently reported improvement."""
    __tracebackhide__ = True
    missing = [key for key in STATS_KEYS if key not in stats]
    assert not missing, f"consolidation stats lack {', '.join(missing)}; got {sorted(stats)}"
    before, after, improvement = (_number(key, stats[key]) for key in STATS_KEYS)
    assert after < before, f"consolidation did not move toward the basin: {before!r} -> {after!r}"
    expected = before - after
    assert math.isclose(improvement, expected, rel_tol=1e-6, abs_tol=1e-12), (
        f"consolidation_improvement is {improvement!r}, but before - after is {expected!r}"
    )


def assert_basin_close(
    a: Tensor | Iterable[float],
    b: Tensor | Iterable[float],
    fisher_diag: Tensor | Iterable[float],
    atol: float,
) -> None:
    """The Fisher distance between basins ``a`` and ``b`` is at most ``atol``."""
    __tracebackhide__ = True
    import torch

    from qig_guard.runtime.geometry import fisher_distance

    def tensor(value: Tensor | Iterable[float]) -> Tensor:
        if isinstance(value, torch.Tensor):
            return value.detach()
        return torch.tensor(list(value), dtype=torch.float64)

    distance = float(fisher_distance(tensor(a), tensor(b), tensor(fisher_diag)))
    assert distance <= atol, f"basins are {distance!r} apart in Fisher distance (atol={atol!r})"
