"""Reparsing an edited buffer by pieces gives the text, and the findings, of a whole parse."""

from __future__ import annotations

import libcst as cst
import pytest
from rule_cases import example_and_corpus_sources

from qig_guard.config import Config
from qig_guard.engine.checker import check_text
from qig_guard.rules import all_codes, load_rules
from qig_guard.server.reparse import Reparser

RULES = load_rules(all_codes())

SHAPES = {
    "block-footer-comments": "def f():\n  x = 1\n  # t\n# u\n\ny = 2\n",
    "crlf": "import torch\r\n\r\ndef f(model):\r\n    model.target_basin = b\r\n",
    "mixed-indents": "def f():\n  return 1\n\n\ndef g():\n    return 2\n",
    "tabs": "class A:\n\tdef f(self):\n\t\treturn 1\n\nx = 1\n",
    "semicolons": "a = 1; b = 2\nc = (1,\n 2); d = 3\ne = 4\n",
    "no-trailing-newline": "x = 1\nmodel.basin_matcher.target_basin = b",
    "decorated": "import a\n\n@torch.no_grad()\n# c\n@staticmethod\ndef f(a,\n  b):\n  pass\n",
    "else-only-indented": "if x: pass\nelse:\n  y = 1\nz = 2\n",
    "lone-cr": "x = 1\ry = 2\n",
    "syntax-error": "x = 1\ny = (\n",
    "header-footer": "# head\n\nimport torch\n\n\n# tail\n",
}


def _sources() -> list[tuple[str, str]]:
    sources = list(SHAPES.items())
    for rule in RULES:
        sources += [(f"{rule.code}-{i}", example.code) for i, example in enumerate(rule.INVALID)]
    return sources + example_and_corpus_sources(20)


SOURCES = _sources()


def _findings(source: str, parse: Reparser | None) -> list[dict[str, object]]:
    return [
        f.to_dict()
        for f in check_text("a.py", source, Config(), RULES, parse_module=parse).findings
    ]


@pytest.mark.parametrize(("name", "source"), SOURCES, ids=[name for name, _ in SOURCES])
def test_pieces_give_the_whole_parse_findings(name: str, source: str) -> None:
    reparse = Reparser()
    assert _findings(source, reparse) == _findings(source, None)
    # An edit in the middle: reused pieces, the same findings as a fresh whole parse.
    lines = source.splitlines(keepends=True)
    middle = len(lines) // 2
    edited = "".join([*lines[:middle], "model.basin_matcher.target_basin = b\n", *lines[middle:]])
    assert _findings(edited, reparse) == _findings(edited, None)
    try:
        cst.parse_module(edited)
    except cst.ParserSyntaxError:
        with pytest.raises(cst.ParserSyntaxError):  # the insertion may break a block
            reparse(edited)
    else:
        assert reparse(edited).code == edited


def test_unchanged_statements_are_not_parsed_again() -> None:
    reparse = Reparser()
    first = reparse("import torch\n\n\ndef f():\n    return 1\n\n\nx = 2\n")
    second = reparse("import torch\n\n\ndef f():\n    return 1\n\n\nx = 3\n")
    assert second.body[0] is first.body[0]
    assert second.body[1] is first.body[1]
    assert second.body[2] is not first.body[2]
    assert second.code.endswith("x = 3\n")


def test_repeated_pieces_get_their_own_nodes() -> None:
    reparse = Reparser()
    source = "x = 1\n" + "\nmodel.basin_matcher.target_basin = b\n" * 3
    reparse(source)
    edited = source.replace("x = 1", "x = 2")
    module = reparse(edited)
    assert len({id(statement) for statement in module.body}) == len(module.body) == 4
    lines = [f["line"] for f in _findings(edited, reparse)]
    assert lines == [3, 5, 7] and _findings(edited, reparse) == _findings(edited, None)


def test_a_syntax_error_is_the_whole_files() -> None:
    with pytest.raises(cst.ParserSyntaxError):
        Reparser()("x = 1\n\ndef f(:\n    pass\n")
