"""The parser front: CPython's limits first, libcst's line splitting, rewritten targets."""

from __future__ import annotations

import ast
import itertools
import re
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qig_guard.engine.parsing import (
    MAX_DEPTH,
    ParseRefused,
    keep_deep_stack_thread,
    parse,
    rewrite_annotated_targets,
    scan,
    split_lines,
    with_deep_stack,
)
from qig_guard.rules import all_codes, load_rule


def test_lines_split_only_on_newline_sequences() -> None:
    source = "a\fb\x1c\x85\u2028c\r\nd\re\nf"
    assert split_lines(source) == ["a\fb\x1c\x85\u2028c\r\n", "d\r", "e\n", "f"]
    assert split_lines("") == []
    assert split_lines("x\n") == ["x\n"]


@given(st.text(alphabet="ab\n\r\f\v\x1c\x85\u2028", max_size=12))
@settings(max_examples=500, deadline=None)
def test_lines_split_as_the_tokenizer_splits_them(source: str) -> None:
    starts = [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", source))]
    expected = [source[a:b] for a, b in itertools.pairwise(starts)]
    if starts[-1] < len(source):
        expected.append(source[starts[-1] :])
    assert split_lines(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("(x): int = 1\n", "x  : int = 1\n"),
        ("( x ) : int\n", "x     : int\n"),
        ("é = 1; (self.y): str = 'é'\n", "é = 1; self.y  : str = 'é'\n"),
        ("if a:\n    (b[0]): int = 2\n", "if a:\n    b[0]  : int = 2\n"),
        ("x: int = 1\n", "x: int = 1\n"),
        ("(x\n): int = 1\n", "(x\n): int = 1\n"),  # multi-line: left alone
    ],
)
def test_parenthesized_annotated_targets_are_rewritten_in_place(source: str, expected: str) -> None:
    assert rewrite_annotated_targets(source, scan(ast.parse(source)).annotated) == expected


def test_rewritten_files_parse_and_say_so() -> None:
    assert parse("(x): int = 1\n").rewritten
    assert not parse("x: int = 1\n").rewritten


def test_depth_is_measured_without_recursion() -> None:
    tree = with_deep_stack(lambda: ast.parse("x = " + " + ".join(["a"] * 5000)))
    assert scan(tree).depth > 5000


@pytest.mark.parametrize(
    "source",
    [
        "x = " + " + ".join(["a"] * 1200) + "\n",
        "def f():\n    if x:\n        y = " + "-" * 1100 + "1\n",
        "z = 1\nx = f(\n" + "g(" * 180 + "1" + ")" * 180 + "\n)\n",
        "class A:\n    (x): int = 1\n    def f(self):\n        (self.y): int = [\n            2]\n",
    ],
)
def test_short_statements_are_skipped_without_changing_the_verdict(source: str) -> None:
    tree = with_deep_stack(lambda: ast.parse(source))
    full = scan(tree)
    longest = max(len(line) for line in source.split("\n"))
    fast = scan(tree, longest)
    assert fast.annotated == full.annotated
    assert (fast.depth > MAX_DEPTH) == (full.depth > MAX_DEPTH)
    if full.depth > MAX_DEPTH:
        assert (fast.depth, fast.deepest) == (full.depth, full.deepest)
    assert fast.depth <= full.depth


def test_deeper_than_the_limit_is_refused_with_its_depth() -> None:
    with pytest.raises(ParseRefused, match=rf"nests \d+ levels deep, over .* {MAX_DEPTH}"):
        with_deep_stack(lambda: parse("x = " + "-" * (MAX_DEPTH + 10) + "1\n"))


def test_cpython_nesting_errors_are_refused_other_syntax_errors_go_to_libcst() -> None:
    with pytest.raises(ParseRefused, match="too many nested parentheses"):
        parse("x = " + "(" * 300 + ")" * 300 + "\n")
    import libcst as cst

    with pytest.raises(cst.ParserSyntaxError):
        parse("def f(:\n")


def test_no_rule_pattern_needs_python_3_11() -> None:
    # Atomic groups and possessive quantifiers are new in Python 3.11's re.
    for code in all_codes():
        module = sys.modules[load_rule(code).__module__]
        for value in vars(module).values():
            if isinstance(value, re.Pattern):
                assert not re.search(r"\(\?>|[*+?}]\+", value.pattern), (code, value.pattern)


def test_rules_load_next_to_generic_aliases() -> None:
    # On Python 3.10 `tuple[str, str]` is an instance of type; issubclass() on it raises.
    assert load_rule("QIG001").code == "QIG001"


def test_parsing_skips_node_validation_only_while_it_parses() -> None:
    import libcst as cst

    from qig_guard.engine.parsing import parse

    source = "class A:\n    def f(self, x=1, *a, **k):\n        return [y async for y in x]\n"
    assert parse(source).module.deep_equals(cst.parse_module(source))
    with pytest.raises(cst.CSTValidationError):  # validation is back afterwards
        cst.Name("not a name")


def _ours() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("qig-guard")]


def _kept_thread_serves_every_call(_: object) -> bool:
    keep_deep_stack_thread()
    first = with_deep_stack(threading.get_ident)
    (kept,) = _ours()  # still there after the call, to serve the next one
    nested = with_deep_stack(lambda: with_deep_stack(threading.get_ident))  # runs at once
    return with_deep_stack(threading.get_ident) == first == kept.ident == nested


def test_a_worker_keeps_one_deep_stack_thread_other_processes_none() -> None:
    from qig_guard.engine import isolation

    assert isolation.run_isolated([0], _kept_thread_serves_every_call, lambda *_: False, 1) == [
        True
    ]
    # This process may fork later (pytest, an editor): no thread of ours outlives a call.
    assert with_deep_stack(threading.get_ident) != threading.get_ident()
    assert not _ours()
    with pytest.raises(ZeroDivisionError):
        with_deep_stack(lambda: 1 // 0)  # raised on the caller's thread
