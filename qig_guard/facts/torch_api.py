"""Facts of the torch and NumPy APIs that several rules ask: one home for each list.

- which methods keep a tensor's numbers (:data:`VALUE_KEEPING_METHODS`) and which keep
  its autograd graph (:data:`GRADIENT_KEEPING_METHODS`), which drop the graph
  (:data:`DETACHING`);
- which ``with`` contexts and decorators turn gradients off (:func:`disables_gradients`);
- which names are optimizers and which methods iterate a model's parameters;
- which functions serialise or load any object with pickle (:data:`PICKLE_MODULES`);
- which calls make new random numbers (:func:`makes_random_data`) and which class loads
  data (:data:`DATA_LOADER`), and whether a source imports either under another name
  (:func:`imports_random_or_loader_as`).

Names are qualified the way :meth:`~qig_guard.rules.base.FileContext.qualified_name`
gives them (``numpy``, not ``np``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from qig_guard.facts.words import matches_any

if TYPE_CHECKING:
    import libcst as cst

    from qig_guard.rules.base import FileContext

# -- value and gradient ----------------------------------------------------------

VALUE_KEEPING_METHODS = frozenset(
    {"detach", "detach_", "clone", "copy", "contiguous"}  # copied, or the tensor itself
    | {"requires_grad_", "share_memory_"}
    | {"cpu", "cuda", "to", "float", "double", "half", "type_as", "astype"}  # moved or cast
    | {"view", "view_as", "reshape", "flatten", "ravel", "squeeze", "unsqueeze"}  # reshaped
    | {"numpy", "tolist"}  # converted to an array or a list
)
"""Methods whose result holds the receiver's numbers: a basin stays a basin through
``basin.detach().cpu().numpy().tolist()``, and a weight copied through ``q.clone()``
is still ``q``'s weights."""

VALUE_KEEPING_ATTRIBUTES = frozenset({"data", "T", "mT", "real"})
"""Attributes that hold the receiver's numbers (``p.data``, ``basin.T``)."""

DETACHING = frozenset({"detach", "detach_", "data", "item", "tolist", "numpy"})
"""Methods (and the ``.data`` attribute) whose result carries no autograd graph."""

_NDARRAY_METHODS = frozenset({"copy", "astype"})  # NumPy's: an array has no graph

GRADIENT_KEEPING_METHODS = (VALUE_KEEPING_METHODS - DETACHING - _NDARRAY_METHODS) | {
    "expand",
    "expand_as",
}
"""Methods whose result still carries the receiver's gradient: the value-keeping tensor
methods that stay in the graph, and broadcasts (``basin.expand(4, -1)``), which keep
the gradient though not the value. Differs from :data:`VALUE_KEEPING_METHODS`, which
also holds the methods that leave the graph (``detach``, ``numpy``)."""

METADATA_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad"})
"""Attributes that describe a tensor without its values: reading them copies no data."""

NO_GRAD_CONTEXTS = frozenset(
    {
        "torch.no_grad",
        "torch.inference_mode",
        "torch.autograd.no_grad",
        "torch.autograd.grad_mode.no_grad",
        "torch.autograd.grad_mode.inference_mode",
    }
)
"""Context managers (and decorators) under which no gradient is recorded."""

GRAD_MODE_SETTERS = frozenset(
    {
        "torch.set_grad_enabled",
        "torch.autograd.set_grad_enabled",
        "torch.autograd.grad_mode.set_grad_enabled",
    }
)
"""Context managers that record gradients or not by their first argument."""


def disables_gradients(context: FileContext, node: cst.BaseExpression) -> bool:
    """``torch.no_grad()``, ``torch.inference_mode``, ``torch.set_grad_enabled(False)``:
    a ``with`` item or decorator under which no gradient is recorded."""
    # imported here: the project index reads these facts and never loads libcst
    import libcst as cst

    if isinstance(node, cst.Call):
        qualified = context.qualified_name(node.func)
        if qualified in GRAD_MODE_SETTERS:
            first = node.args[0].value if node.args else None
            return isinstance(first, cst.Name) and first.value == "False"
        return qualified in NO_GRAD_CONTEXTS
    return context.qualified_name(node) in NO_GRAD_CONTEXTS


# -- training ----------------------------------------------------------------------

PARAMETER_ITERATORS = frozenset({"parameters", "named_parameters"})
"""Methods of a model that iterate its parameters."""

OPTIMIZER_MODULES = frozenset({"optim", "optimizers", "optimization"})
"""Modules whose classes are optimizers (``torch.optim.Adam``, ``transformers.optimization``)."""

NOT_OPTIMIZER_MODULES = frozenset({"lr_scheduler", "swa_utils"})
"""Submodules of those whose classes take an optimizer, not parameters."""

OPTIMIZER_WORDS = ("optim*", "opt", "sgd", "adam*", "lbfgs")
"""Words of a name that holds an optimizer: ``ocean_optimizer``, ``self.opt``, ``adam``."""


def names_an_optimizer(word: str) -> bool:
    """True for a word (see :func:`~qig_guard.facts.words.words`) of an optimizer's name."""
    return matches_any(word, OPTIMIZER_WORDS)


# -- serialisation -------------------------------------------------------------------

PICKLE_MODULES = ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
"""Modules that write any Python object with pickle, and load it by running code."""

PICKLE_WRITERS = frozenset(
    f"{module}.{verb}" for module in PICKLE_MODULES for verb in ("dump", "dumps")
)
PICKLE_LOADERS = frozenset(
    f"{module}.{verb}" for module in PICKLE_MODULES for verb in ("load", "loads")
)

TORCH_SAVE = frozenset({"torch.save"})
TORCH_LOAD = frozenset({"torch.load", "torch.serialization.load"})

CHECKPOINT_WRITERS = TORCH_SAVE | PICKLE_WRITERS | {"joblib.dump"}
"""Functions that write a checkpoint: any object, in a binary format."""

BINARY_WRITERS = {
    **dict.fromkeys(TORCH_SAVE | PICKLE_WRITERS, (0, ("obj",))),
    "joblib.dump": (0, ("value",)),
    "numpy.save": (1, ("arr",)),
    "zlib.compress": (0, ("data",)),
    "bz2.compress": (0, ("data",)),
    "lzma.compress": (0, ("data",)),
    "gzip.compress": (0, ("data",)),
}
"""Functions that turn one object into bytes (save, pickle or compress it): each maps to
the position of that argument and its keyword names."""
ARRAY_ARCHIVES = frozenset({"numpy.savez", "numpy.savez_compressed"})
"""Functions that write the arrays passed to them into one binary archive."""
STRUCT_PACKERS = frozenset({"struct.pack", "struct.pack_into"})
"""Functions that pack numbers into bytes."""

# -- random and new data ---------------------------------------------------------------

TORCH_RANDOM = frozenset(
    f"torch.{name}"
    for name in (
        *("rand", "randn", "rand_like", "randn_like", "randint", "randint_like"),
        *("normal", "bernoulli", "poisson"),
    )
)
"""Torch functions that return new random numbers."""

_NOT_NEW_RANDOM = {
    # pick among given data, or manage the generator
    "numpy.random": frozenset(
        {"choice", "permutation", "shuffle", "seed", "default_rng", "RandomState", "Generator"}
        | {"get_state", "set_state", "SeedSequence"}
    ),
    "random": frozenset(
        {"choice", "choices", "sample", "shuffle", "seed", "getstate", "setstate", "Random"}
    ),
}


def makes_random_data(qualified: str) -> bool:
    """``torch.randn``, ``numpy.random.normal``, ``random.gauss``: a function that returns
    new random numbers (not ``numpy.random.choice``, which picks among given data, nor
    ``numpy.random.seed``)."""
    if qualified in TORCH_RANDOM:
        return True
    module, _, function = qualified.rpartition(".")
    excluded = _NOT_NEW_RANDOM.get(module)
    return excluded is not None and function not in excluded


DATA_LOADER = "torch.utils.data.DataLoader"
DATA_WORDS = frozenset({"loader", "dataloader", "dataset", "datasets"})
"""Last words of a name that holds a data loader or dataset (``val_loader``)."""


# Imports that let code call those by other names (a text test: no parse needed).
_ALIASED = re.compile(r"(?:rand\w*|normal|bernoulli|poisson|DataLoader)[ \t]*$")
_FROM_RANDOM = re.compile(r"\brandom[ \t]+import\b")  # numpy.random's or the stdlib's


def imports_random_or_loader_as(source: str) -> bool:
    """An import that lets code call a random source or the data loader by another name:
    ``from torch import randn as r``, ``import numpy.random as npr``,
    ``from numpy.random import uniform``, ``from random import gauss``, ``DataLoader as DL``."""
    hit = source.find(" as ")
    while hit != -1:
        if _ALIASED.search(source, max(0, hit - 40), hit):
            return True
        hit = source.find(" as ", hit + 1)
    return "random" in source and _FROM_RANDOM.search(source) is not None
