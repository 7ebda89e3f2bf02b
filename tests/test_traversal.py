"""The fast traversal finds exactly what libcst's own batched traversal finds."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper
from rule_cases import example_and_corpus_sources

from qig_guard.config import Config
from qig_guard.engine import traversal
from qig_guard.engine.checker import check_text
from qig_guard.rules import all_codes, load_rules

RULES = load_rules(all_codes())


def _sources() -> list[tuple[str, str]]:
    sources = [
        (f"{rule.code}-{index}.py", example.code)
        for rule in RULES
        for index, example in enumerate(rule.INVALID)
    ]
    sources += [
        (f"{rule.code}-valid-{i}.py", code) for rule in RULES for i, code in enumerate(rule.VALID)
    ]
    return sources + example_and_corpus_sources(40)


def _libcst_walk(
    wrapper: MetadataWrapper, visitors: Sequence[cst.BatchableCSTVisitor], regions: object = None
) -> None:
    wrapper.visit_batched(visitors)  # every rule over every parsed node: regions ignored


def test_fast_walk_matches_libcst_visit(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = _sources()
    fast = [check_text(name, text, Config(), RULES).findings for name, text in sources]
    monkeypatch.setattr(traversal, "walk_batched", _libcst_walk)
    slow = [check_text(name, text, Config(), RULES).findings for name, text in sources]
    assert sum(map(len, fast)) > 20
    for (name, _), found, expected in zip(sources, fast, slow, strict=True):
        assert [f.to_dict() for f in found] == [f.to_dict() for f in expected], name


def test_source_order_answers_before_and_inside() -> None:
    import libcst as cst

    from qig_guard.engine.positions import SourceOrder

    module = cst.parse_module("def f(a):\n    x = a + 1\n    y = x * 2\n    return y\n")
    function = module.body[0]
    assert isinstance(function, cst.FunctionDef)
    first, second, _ = function.body.body
    x_value = first.body[0].value  # type: ignore[attr-defined]
    y_value = second.body[0].value  # type: ignore[attr-defined]
    order = SourceOrder()
    for root in (module, function):
        start, end = order(first, root)
        assert order(x_value, root)[0] > start and order(x_value, root)[1] <= end  # inside
        assert order(x_value, root)[0] < order(y_value, root)[0]  # before
        assert order(y_value, root)[0] > end  # after the first statement


# Every kind of node whose fields are not in source order, and then some.
_ORDERED = """\
import a.b as c
from ..d import (e as f, g)
match x:
    case [a, b, *rest] if a > (b if c else d):
        pass
    case {"k": v, **kw}:
        pass
    case Point(x=0, y=yy) | Other(z) as w:
        pass
@decorate(1)
async def f(a, /, b: int = 2, *c, d, **e) -> T:
    try:
        pass
    except ValueError as err:
        raise
    else:
        y = [q async for q in z if q]
    finally:
        del y
    return (lambda a, /, b=1, *c, d, **e: a)(b, *c, k=v, **d), x[1:2, ::3]
class K(Base, metaclass=M):
    v: int = f"{x!r:>{w}} {y=}"
"""
_ORDERED += "def g[T: int, *Ts, **P](a: T) -> T: ...\ntype Alias[K] = list[K]\n"
_ORDERED += "try:\n    pass\nexcept* ValueError as group:\n    pass\n"  # libcst reads any grammar


def test_children_are_libcsts_children_less_trivia_in_source_order() -> None:
    module = cst.parse_module(_ORDERED)
    stack: list[cst.CSTNode] = [module]
    seen = 0
    while stack:
        node = stack.pop()
        ours = [
            c for c in traversal.children(node) if type(c).__name__ not in traversal.TRIVIA_TYPES
        ]
        theirs = [c for c in node.children if type(c).__name__ not in traversal.TRIVIA_TYPES]
        assert [id(c) for c in ours] == [id(c) for c in theirs], type(node).__name__
        stack.extend(traversal.children(node))
        seen += 1
    assert seen > 200
    assert [
        type(n).__name__ for n in traversal.nodes_below(cst.parse_expression("a if b else c"))
    ] == ["IfExp", "Name", "Name", "Name"]
    assert [
        n.value
        for n in traversal.nodes_below(cst.parse_expression("a if b else c"))
        if isinstance(n, cst.Name)
    ] == ["a", "b", "c"]


def test_a_leaf_has_no_fields_to_read() -> None:
    from qig_guard.engine.traversal import _field_names

    for leaf in (cst.Name, cst.SimpleString, cst.Integer, cst.FormattedStringText):
        assert _field_names(leaf, True) == ()
    assert _field_names(cst.Attribute, True) == ("value", "attr")
