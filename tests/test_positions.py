"""Positions tracked per top-level statement equal libcst's PositionProvider, node by node."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from qig_guard.engine.positions import StatementPositions
from qig_guard.rules import all_codes, load_rules

ROOT = Path(__file__).resolve().parent.parent

SHAPES = {
    "header-and-footer": "#!/usr/bin/env python\n# a header\n\nimport torch\n\n# a footer\n",
    "crlf": "import torch\r\n\r\ndef f(model):\r\n    model.target_basin = b\r\n",
    "no-trailing-newline": "x = 1\nmodel.basin_matcher.target_basin = b",
    "tabs": "class A:\n\tdef f(self):\n\t\tif x:\n\t\t\treturn 1\n",
    "decorated": "@torch.no_grad()\n# between\n@staticmethod\ndef f(a,\n      b):\n    pass\n",
    "semicolons-and-continuations": "a = 1; b = [\n    2,\n]\nc = 1 + \\\n    2\n",
    "strings": 'x = """one\ntwo"""\ny = f"{x!r:>{width}}"\n',
    "only-comments": "# nothing\n\n# here\n",
    "empty": "",
    "class-members": (
        "class A(B):\n    'doc'\n    x = 1\n\n    # lead\n\n    @property\n    def f(self):\n"
        "        return g(1,\n   2)\n    class C:\n        def h(self): pass\n"
        "    async def k(self):  # c\n        await z\n"
    ),
    "tab-class-members": "class A:\n\tx = 1\n\tdef f(self):\n\t\tif x:\n\t\t\treturn 1\n",
    # A cut module: a blanked run of lines is one logical line (see slicing.cut).
    "blanked-run": "import torch\n\\\n\\\n\n# kept\ndef f(model):\n    model.target_basin = b\n",
}


def _sources() -> list[tuple[str, str]]:
    sources = list(SHAPES.items())
    for rule in load_rules(all_codes()[1:]):  # QIG000's examples do not parse
        sources += [(f"{rule.code}-{i}", example.code) for i, example in enumerate(rule.INVALID)]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import corpus
    finally:
        sys.path.pop(0)
    return sources + [(f"corpus-{i}", text) for i, text in enumerate(corpus.sample(3))]


@pytest.mark.parametrize("with_ast", [False, True], ids=["statements", "class-members"])
@pytest.mark.parametrize(("name", "source"), _sources(), ids=[name for name, _ in _sources()])
def test_every_node_has_libcsts_position(name: str, source: str, with_ast: bool) -> None:
    module = cst.parse_module(source)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    # With the ``ast``, nodes in class members are placed from the member's first line.
    positions = StatementPositions(module, ast.parse(source) if with_ast else None)
    # Every node of small sources; a sample of the large ones (each lookup searches).
    step = 1 if len(expected) < 2000 else 13
    for node in list(expected)[::step]:
        assert positions(node) == expected[node], (name, type(node).__name__)


def test_lookups_out_of_source_order() -> None:
    module = cst.parse_module("a = 1\n\n\nb = 2\nc = 3\n")
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    positions = StatementPositions(module)
    for statement in reversed(module.body):
        assert positions(statement) == expected[statement]
    assert positions(module) == expected[module]


@pytest.mark.parametrize(("name", "source"), _sources(), ids=[name for name, _ in _sources()])
def test_statements_first_lines_from_the_ast_are_those_counted_in_code(
    name: str, source: str
) -> None:
    positions = StatementPositions(cst.parse_module(source), ast.parse(source))
    from_tree = positions._first_lines_from_tree()
    assert from_tree is not None
    assert from_tree == positions._counted_first_lines()
