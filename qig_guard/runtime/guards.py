"""Runtime guards: a frozen Ocean and no weight sharing between models.

``frozen(ocean)`` raises ``FrozenParameterError``, naming the offending call:

- at once, when a gradient reaches a parameter of ``ocean`` (a hook on each
  parameter that requires grad), when an optimizer is about to step one that has a
  gradient (torch's global step pre-hook), or when ``train()`` or
  ``load_state_dict()`` is called on ``ocean`` or one of its submodules;
- on exit, when a parameter's ``requires_grad`` was turned back on, its ``.grad``
  changed, or it was modified in place (its version counter moved), which catches
  edits under ``torch.no_grad()`` that no hook sees.

It works as a context manager and as a decorator, and removes everything it
installed on exit. ``eval()`` and measuring the Ocean stay allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ContextDecorator
from dataclasses import dataclass, field
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


@dataclass
class _Entry:
    """What one ``with frozen(...)`` installed and the parameter state it started from."""

    handles: list[RemovableHandle] = field(default_factory=list)
    patched: list[tuple[nn.Module, str, Any]] = field(default_factory=list)
    state: dict[int, tuple[bool, int, Tensor | None, int]] = field(default_factory=dict)


_MISSING = object()


def _parameter_state(param: Tensor) -> tuple[bool, int, Tensor | None, int]:
    grad = param.grad
    return (param.requires_grad, param._version, grad, -1 if grad is None else grad._version)


class frozen(ContextDecorator):
    """Forbid training, gradients, steps and edits on the parameters of ``modules``.

    ``check_on_exit=False`` skips the exit checks (for callers that compare the
    parameters themselves and report differently).
    """

    def __init__(self, *modules: nn.Module, check_on_exit: bool = True) -> None:
        if not modules:
            raise ValueError("frozen() needs at least one module")
        self._modules = modules
        self._check_on_exit = check_on_exit
        self._entries: list[_Entry] = []

    def _named_parameters(self) -> dict[int, tuple[str, Tensor]]:
        named: dict[int, tuple[str, Tensor]] = {}
        for module in self._modules:
            for name, param in module.named_parameters():
                named.setdefault(id(param), (name, param))
        return named

    def __enter__(self) -> frozen:
        named = self._named_parameters()
        entry = _Entry(state={key: _parameter_state(p) for key, (_, p) in named.items()})
        names = {key: name for key, (name, _) in named.items()}
        entry.handles.append(register_optimizer_step_pre_hook(self._step_hook(names)))
        for name, param in named.values():
            if param.requires_grad:
                hook = param.register_hook(self._grad_hook(name))  # type: ignore[no-untyped-call]
                entry.handles.append(hook)
        for module in self._modules:
            for path, sub in module.named_modules():
                label = f"{type(module).__name__}{'.' + path if path else ''}"
                self._patch(entry, sub, "train", self._guarded_train(sub, label))
                self._patch(entry, sub, "load_state_dict", self._refuse(label, "load_state_dict"))
        self._entries.append(entry)
        return self

    @staticmethod
    def _patch(
        entry: _Entry, module: nn.Module, name: str, replacement: Callable[..., Any]
    ) -> None:
        entry.patched.append((module, name, module.__dict__.get(name, _MISSING)))
        object.__setattr__(module, name, replacement)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        entry = self._entries.pop()
        for handle in entry.handles:
            handle.remove()
        for module, name, previous in reversed(entry.patched):
            if previous is _MISSING:
                del module.__dict__[name]
            else:
                object.__setattr__(module, name, previous)
        if exc_type is None and self._check_on_exit:
            self._check_unchanged(entry)

    def _check_unchanged(self, entry: _Entry) -> None:
        for key, (name, param) in self._named_parameters().items():
            if key not in entry.state:
                continue
            requires_grad, version, grad, grad_version = entry.state[key]
            if param.requires_grad and not requires_grad:
                raise FrozenParameterError(
                    f"requires_grad_(True) was called on frozen parameter {name!r} inside frozen()"
                )
            now_grad = param.grad
            now_grad_version = -1 if now_grad is None else now_grad._version
            if now_grad is not grad or now_grad_version != grad_version:
                raise FrozenParameterError(
                    f"backward() wrote a gradient into frozen parameter {name!r} inside frozen()"
                )
            if param._version != version:
                raise FrozenParameterError(
                    f"frozen parameter {name!r} was modified in place inside frozen() (an "
                    f"in-place call such as add_/copy_, e.g. under torch.no_grad(); version "
                    f"{version} -> {param._version})"
                )

    @staticmethod
    def _guarded_train(module: nn.Module, label: str) -> Callable[..., nn.Module]:
        original = type(module).train

        def train(mode: bool = True) -> nn.Module:
            if mode:
                raise FrozenParameterError(f"{label}.train() called on a frozen model")
            return original(module, mode)

        return train

    @staticmethod
    def _refuse(label: str, method: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise FrozenParameterError(f"{label}.{method}() called on a frozen model")

        return refuse

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
