"""Runtime guards: a frozen Ocean and no weight sharing between models.

``frozen(ocean)`` installs torch's global optimizer step pre-hook and a gradient
hook on every parameter of ``ocean``; it raises ``FrozenParameterError`` the moment
a gradient reaches one of them or an optimizer is about to step one that has a
gradient. It works as a context manager and as a decorator, and removes its hooks
on exit.
"""

from __future__ import annotations

from contextlib import ContextDecorator
from types import TracebackType
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.hooks import RemovableHandle


class FrozenParameterError(RuntimeError):
    """A frozen (Ocean) parameter received a gradient or an optimizer step."""


class WeightSharingError(AssertionError):
    """Two models share parameter storage or hold identical parameter values."""


class frozen(ContextDecorator):
    """Forbid any gradient or optimizer step on the parameters of ``modules``."""

    def __init__(self, *modules: nn.Module) -> None:
        if not modules:
            raise ValueError("frozen() needs at least one module")
        self._modules = modules
        self._handles: list[list[RemovableHandle]] = []

    def _parameters(self) -> dict[int, str]:
        return {
            id(param): name for module in self._modules for name, param in module.named_parameters()
        }

    def __enter__(self) -> frozen:
        names = self._parameters()
        handles = [register_optimizer_step_pre_hook(self._step_hook(names))]
        for module in self._modules:
            for name, param in module.named_parameters():
                if param.requires_grad:
                    hook = param.register_hook(self._grad_hook(name))  # type: ignore[no-untyped-call]
                    handles.append(hook)
        self._handles.append(handles)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for handle in self._handles.pop():
            handle.remove()

    @staticmethod
    def _grad_hook(name: str) -> Any:
        def hook(grad: Tensor) -> Tensor:
            raise FrozenParameterError(f"a gradient reached frozen parameter {name!r}")

        return hook

    @staticmethod
    def _step_hook(names: dict[int, str]) -> Any:
        def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if id(param) in names and param.grad is not None:
                        raise FrozenParameterError(
                            f"{type(optimizer).__name__}.step() would update frozen "
                            f"parameter {names[id(param)]!r}"
                        )

        return hook


def _storages(module: nn.Module) -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        storage = tensor.untyped_storage()
        if storage.nbytes():
            found[(storage.data_ptr(), storage.nbytes())] = name
    return found


def assert_no_weight_sharing(student: nn.Module, teacher: nn.Module) -> None:
    """Raise ``WeightSharingError`` if the models share storage or parameter values.

    Storage is compared for parameters and buffers. Values are compared for
    parameters only, and a constant tensor (e.g. a fresh LayerNorm's ones or a
    zero bias) never counts as shared: it carries no information to copy.
    """
    problems: list[str] = []
    teacher_storage = _storages(teacher)
    for key, name in _storages(student).items():
        if key in teacher_storage:
            problems.append(f"{name} shares storage with teacher {teacher_storage[key]}")
    teacher_params = list(teacher.named_parameters())
    for name, param in student.named_parameters():
        flat = param.detach().reshape(-1)
        if flat.numel() < 2 or bool(torch.all(flat == flat[0])):
            continue
        for other_name, other in teacher_params:
            if other.shape == param.shape and torch.equal(other.detach(), param.detach()):
                problems.append(f"{name} has the same values as teacher {other_name}")
                break
    if problems:
        raise WeightSharingError("weights shared between models: " + "; ".join(problems))
