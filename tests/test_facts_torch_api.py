"""The torch facts the rules share match what torch really does."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from qig_guard.facts.torch_api import (
    DETACHING,
    GRAD_MODE_SETTERS,
    GRADIENT_KEEPING_METHODS,
    NO_GRAD_CONTEXTS,
    PICKLE_LOADERS,
    PICKLE_WRITERS,
    TORCH_LOAD,
    TORCH_RANDOM,
    TORCH_SAVE,
    VALUE_KEEPING_METHODS,
    makes_random_data,
)

torch = pytest.importorskip("torch")


def _resolve(qualified: str) -> Any:
    module, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _arguments(method: str) -> tuple[Any, ...]:
    """Arguments that make ``x.method(...)`` valid for a 2x3 tensor ``x``."""
    return {
        "to": (torch.float64,),
        "type_as": (torch.zeros(1, dtype=torch.float64),),
        "view": (-1,),
        "view_as": (torch.zeros(6),),
        "reshape": (-1,),
        "unsqueeze": (0,),
        "expand": (2, 2, 3),
        "expand_as": (torch.zeros(2, 2, 3),),
    }.get(method, ())


def _tracked() -> Any:
    """A non-leaf tensor in an autograd graph."""
    return torch.ones(2, 3, requires_grad=True) * 1.0


@pytest.mark.parametrize("method", sorted(GRADIENT_KEEPING_METHODS - {"cuda"}))
def test_gradient_keeping_methods_keep_the_graph(method: str) -> None:
    result = getattr(_tracked(), method)(*_arguments(method))
    assert result.requires_grad and result.grad_fn is not None


@pytest.mark.parametrize("method", sorted(GRADIENT_KEEPING_METHODS & VALUE_KEEPING_METHODS))
def test_value_keeping_tensor_methods_keep_the_numbers(method: str) -> None:
    if method == "cuda" and not torch.cuda.is_available():
        assert hasattr(torch.Tensor, "cuda")
        return
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    result = getattr(x, method)(*_arguments(method))
    assert torch.equal(result.cpu().double().flatten(), x.double().flatten())


@pytest.mark.parametrize("method", sorted(DETACHING - {"data", "numpy"}))
def test_detaching_methods_leave_the_graph(method: str) -> None:
    x = torch.ones(1, 1, requires_grad=True) * 1.0
    result = getattr(x, method)()
    assert not getattr(result, "requires_grad", False)


def test_data_leaves_the_graph() -> None:
    assert not _tracked().data.requires_grad


def test_methods_that_leave_the_graph_are_not_gradient_keeping() -> None:
    assert not GRADIENT_KEEPING_METHODS & DETACHING


@pytest.mark.parametrize("context", sorted(NO_GRAD_CONTEXTS))
def test_no_grad_contexts_record_no_gradient(context: str) -> None:
    x = torch.ones(2, requires_grad=True)
    with _resolve(context)():
        assert not (x * 2).requires_grad


@pytest.mark.parametrize("setter", sorted(GRAD_MODE_SETTERS))
def test_grad_mode_setters_record_gradients_by_their_argument(setter: str) -> None:
    x = torch.ones(2, requires_grad=True)
    with _resolve(setter)(False):
        assert not (x * 2).requires_grad
    with _resolve(setter)(True):
        assert (x * 2).requires_grad


@pytest.mark.parametrize("function", sorted(TORCH_RANDOM))
def test_torch_random_sources_exist_and_are_random_data(function: str) -> None:
    assert callable(_resolve(function)) and makes_random_data(function)


@pytest.mark.parametrize(
    "qualified", ["numpy.random.choice", "numpy.random.seed", "random.choice", "torch.ones"]
)
def test_selection_and_seeding_make_no_random_data(qualified: str) -> None:
    assert not makes_random_data(qualified)


@pytest.mark.parametrize("qualified", sorted(TORCH_SAVE | TORCH_LOAD))
def test_torch_serialisers_exist(qualified: str) -> None:
    assert callable(_resolve(qualified))


@pytest.mark.parametrize("qualified", sorted(PICKLE_WRITERS | PICKLE_LOADERS))
def test_pickle_functions_exist_where_their_module_is_installed(qualified: str) -> None:
    module = qualified.rpartition(".")[0]
    try:
        importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not installed")
    assert callable(_resolve(qualified))
