"""Name resolution through imports, aliases and shadowing."""

from __future__ import annotations

import libcst as cst

from qig_guard.engine.resolve import ScopeTracker, dotted_name


class _Recorder(cst.BatchableCSTVisitor):
    def __init__(self, scopes: ScopeTracker) -> None:
        super().__init__()
        self.scopes = scopes
        self.calls: list[tuple[str | None, str | None]] = []

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append((dotted_name(node.func), self.scopes.qualified_name(node.func)))


def resolve_calls(source: str) -> list[tuple[str | None, str | None]]:
    scopes = ScopeTracker()
    recorder = _Recorder(scopes)
    cst.MetadataWrapper(cst.parse_module(source)).visit_batched([scopes, recorder])
    return recorder.calls


def test_aliases_resolve_to_the_imported_name() -> None:
    source = (
        "import torch as T\n"
        "import torch.nn.functional as F\n"
        "from torch import save as s\n"
        "from torch.optim import Adam\n"
        "import os.path\n"
        "T.save(b, f)\n"
        "F.mse_loss(a, b)\n"
        "s(b, f)\n"
        "Adam(p)\n"
        "os.path.join(a)\n"
    )
    assert [q for _, q in resolve_calls(source)] == [
        "torch.save",
        "torch.nn.functional.mse_loss",
        "torch.save",
        "torch.optim.Adam",
        "os.path.join",
    ]


def test_unbound_names_resolve_to_themselves() -> None:
    assert resolve_calls("torch.save(b, f)\n") == [("torch.save", "torch.save")]


def test_local_variable_shadows_import() -> None:
    source = (
        "from torch import save\n"
        "def f(save):\n"
        "    save(x)\n"
        "def g():\n"
        "    save(x)\n"
        "def h():\n"
        "    save(x)\n"
        "    save = print\n"
    )
    assert [q for _, q in resolve_calls(source)] == [None, "torch.save", None]


def test_function_local_import_and_relative_import() -> None:
    source = (
        "from . import basin_io\n"
        "from .io import save\n"
        "def f():\n"
        "    import pickle as pk\n"
        "    pk.dump(x, fh)\n"
        "    basin_io.write(x)\n"
        "    save(x)\n"
    )
    assert [q for _, q in resolve_calls(source)] == [
        "pickle.dump",
        ".basin_io.write",
        ".io.save",
    ]


def test_class_scope_does_not_enclose_methods() -> None:
    source = (
        "import torch\n"
        "class Saver:\n"
        "    torch = None\n"
        "    torch.save(x)\n"
        "    def method(self):\n"
        "        torch.save(x)\n"
    )
    assert [q for _, q in resolve_calls(source)] == [None, "torch.save"]


def test_global_declaration_defers_to_module() -> None:
    source = (
        "import torch\ndef f():\n    global torch\n    torch = reload(torch)\n    torch.save(x)\n"
    )
    assert [q for _, q in resolve_calls(source)][-1] == "torch.save"


def test_non_name_callee_is_unresolved() -> None:
    assert resolve_calls("get()(x)\n")[0] == (None, None)


def test_a_module_re_exported_through_another_module_resolves() -> None:
    source = (
        "from src import helpers as hp\n"
        "torch = hp.torch\n"
        "np = hp.np\n"
        "other = hp.torch_like\n"
        "torch.save(x, p)\n"
        "np.save(p, x)\n"
        "other.save(x, p)\n"
    )
    assert [qualified for _, qualified in resolve_calls(source)] == [
        "torch.save",
        "numpy.save",
        None,  # `other` is a local of unknown value
    ]
