"""Units, gates and the cut-down module libcst parses (see engine.slicing, engine.gating)."""

from __future__ import annotations

import ast
import re
import textwrap

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qig_guard.config import Config
from qig_guard.engine.gating import select
from qig_guard.engine.parsing import split_lines
from qig_guard.engine.slicing import Slice, cut, layout, regions
from qig_guard.facts.project import EMPTY
from qig_guard.facts.words import words
from qig_guard.rules.gates import (
    AllOf,
    AnyOf,
    Binary,
    Calls,
    Defines,
    FileScope,
    IdentifierPattern,
    Identifiers,
    InNamedDefinition,
    MatMul,
    NumberOutside,
    PowerOf,
    Text,
    Unit,
    WeightedSum,
    aliases,
    code_text,
    standalone,
    unit_identifiers,
)
from qig_guard.rules.qig006_euclidean_basin_distance import EuclideanBasinDistance
from qig_guard.rules.qig010_unsafe_checkpoint_load import UnsafeCheckpointLoad

SOURCE = textwrap.dedent(
    """\
    import pickle


    def helper(path):
        return open(path).read()


    class Store:
        '''A store.'''

        kind = "store"

        def load(self, path):
            return pickle.load(open(path, "rb"))

        def name(self):
            return helper(self.kind)
    """
)


def test_unselected_units_are_blanked_and_their_names_stay_bound() -> None:
    selection = select("m.py", SOURCE, Config(), [UnsafeCheckpointLoad], EMPTY)
    sliced = selection.sliced
    assert selection.rules == [UnsafeCheckpointLoad] and sliced is not None
    kept = sliced.text.split("\n")
    original = SOURCE.split("\n")
    assert len(kept) == len(original)
    for number, line in enumerate(kept):  # every line is kept as it was, or blanked
        assert line in ("", "\\", original[number])
    # A run of blanked lines is one logical line: all but its last end in a continuation.
    assert kept[3:5] == ["\\", ""] and original[3:5] != kept[3:5]
    assert "pickle.load" in sliced.text and "helper(self.kind)" not in sliced.text
    assert "def helper" not in sliced.text
    # Blanked definitions still bind their names where they were defined.
    assert sliced.hidden == {(): frozenset({"helper"}), ("Store",): frozenset({"name"})}
    # The class keeps its header and own statements; the tree matches the text.
    assert "kind = " in sliced.text and "'''A store.'''" in sliced.text
    assert sliced.tree is not None
    assert ast.dump(sliced.tree) == ast.dump(ast.parse(sliced.text))


def test_a_class_whose_members_are_all_blanked_keeps_one_to_stay_valid() -> None:
    source = "class A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n"
    tree = ast.parse(source)
    shape = layout(tree)
    header = next(i for i, unit in enumerate(shape.units) if unit.name == "A")
    sliced = cut(source, tree, shape, {header: {"QIG001"}})
    ast.parse(sliced.text)  # a class body is never empty
    assert sliced.text.count("def ") == 1


def test_regions_give_each_definition_the_rules_that_read_it() -> None:
    selection = select("m.py", SOURCE, Config(), [UnsafeCheckpointLoad], EMPTY)
    sliced = selection.sliced
    assert sliced is not None and sliced.tree is not None
    module = cst.parse_module(sliced.text)
    found = regions(module, sliced.tree, sliced.rules_at)
    store = next(s for s in module.body if isinstance(s, cst.ClassDef))
    load = next(m for m in store.body.body if isinstance(m, cst.FunctionDef))
    assert found[id(store)] == found[id(load)] == frozenset({"QIG010"})


def test_gates_read_code_not_prose() -> None:
    code = code_text('x = "load the file"  # torch.load\ny = getattr(m, "load")\n')
    assert code.count("\n") == 2
    scope = FileScope(Config(), EMPTY, aliases(code))
    names = unit_identifiers(code, scope)
    assert "torch" not in names and "load" in names  # a key-like string counts
    aliased = "from torch import load as fetch\nfetch(p)\n"
    scope = FileScope(Config(), EMPTY, aliases(aliased))
    assert Identifiers("load").holds(Unit("fetch(p)", unit_identifiers("fetch(p)", scope)), scope)


def test_a_number_gate_reads_signs_and_exponents() -> None:
    scope = FileScope(Config(), EMPTY)
    outside = NumberOutside("sync_weight_range")  # default [0.05, 0.1]
    assert outside.holds(Unit("w = -0.07", frozenset()), scope)
    assert outside.holds(Unit("w = 5e-1", frozenset()), scope)
    assert not outside.holds(Unit("w = 0.07", frozenset()), scope)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=" \t\n\r\x0c\x85\u3000ab_1.()[]*+-/>éé", max_size=24))
def test_a_binary_operator_gate_decides_as_its_regex(text: str) -> None:
    scope = FileScope(Config(), EMPTY)
    for symbol, operand in (("-", r"[^\W\d(]|\("), ("+", r"[\w(.]"), ("*", r"[\w(.]")):
        regex = re.compile(rf"[\w)\]]\s*{re.escape(symbol)}\s*(?:{operand})")
        expected = regex.search(text) is not None
        assert Binary(symbol, operand).holds(Unit(text, frozenset()), scope) == expected


# Lines of code in which `@` decorates, multiplies matrices (also continued in brackets or
# after a backslash) or is neither; `**` raises to a half or not.
_AT_AND_POWER_LINES = [
    "@dec", "@dec(", "@dec(x)", ")", "def f(): pass", "class C: pass", "async def g(): pass",
    "    @dec", "    def h(): pass", "x = (a", "@ b", "@ b)", "    @ b", "]", "y = [a",
    "z = a @ b", "z @= b", "w = a \\", "", "# @ in a comment", "s = '@x'", "q = x ** 0.5",
    "q = x ** (.5)", "q = x ** 2", "q = (x", "** 0.5)", "if x:", "    pass", "f(*a, **k)",
]  # fmt: skip


def _in_tree(tree: ast.AST, wanted: type[ast.operator], power: float | None = None) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, wanted):
            right = node.right if isinstance(node, ast.BinOp) else node.value
            if power is None or (isinstance(right, ast.Constant) and right.value == power):
                return True
    return False


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_AT_AND_POWER_LINES), max_size=8))
def test_matmul_and_power_gates_hold_wherever_python_reads_the_operator(
    lines: list[str],
) -> None:
    source = "\n".join(lines) + "\n"
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    unit = Unit(code_text(source), frozenset())
    scope = FileScope(Config(), EMPTY)
    if _in_tree(tree, ast.MatMult):
        assert MatMul().holds(unit, scope)
    if _in_tree(tree, ast.Pow, 0.5):
        assert PowerOf(0.5).holds(unit, scope)


def test_matmul_and_power_gates_read_decorators_and_other_powers() -> None:
    scope = FileScope(Config(), EMPTY)
    for text, expected in (
        ("@property\ndef f(self):\n    return x @ y\n", True),
        ("    @torch.no_grad()\n    @staticmethod\n\n    async def f():\n", False),
        ("@dataclass(frozen=True)\nclass A:\n", False),
        ("y = (a\n     @ b\n)\n", True),
        ("x = (a\n@ b)\ndef f(): pass\n", True),
        ("x = a \\\n@ b\ndef f(): pass\n", True),
        ("@dec(\n    x,\n)\ndef f(): pass\n", True),  # a doubt: read as a product
    ):
        assert MatMul().holds(Unit(text, frozenset()), scope) == expected, text
    for text, expected in (
        ("x ** 0.5", True), ("x**(.5)", True), ("x ** 5e-1", True), ("x ** 0_0.5", True),
        ("x ** 2", False), ("x ** -0.5", False), ("x ** 0.25", False), ("f(**kw)", False),
    ):  # fmt: skip
        assert PowerOf(0.5).holds(Unit(text, frozenset()), scope) == expected, text


def test_a_binary_operator_gate_reads_operators_not_signs() -> None:
    minus = Binary("-", r"[^\W\d(]|\(")
    scope = FileScope(Config(), EMPTY)
    for text, expected in (
        ("a - b", True),
        ("f(x)\n    - (y)", True),
        ("x[-1]", False),
        ("def f() -> T: ...", False),
        ("eps = 1e-8", False),
        ("v - 1", False),
    ):
        assert minus.holds(Unit(text, frozenset()), scope) == expected, text


def test_combined_gates_are_flat() -> None:
    gate = Identifiers("a") | Identifiers("b") | (Identifiers("c") & Identifiers("d") & Text("e"))
    assert isinstance(gate, AnyOf) and len(gate.gates) == 3
    assert isinstance(gate.gates[2], AllOf) and len(gate.gates[2].gates) == 3


def test_a_member_kept_for_its_name_keeps_its_class() -> None:
    # A method named like a module (`pickle`) is kept whatever the gates say, since its
    # binding may shadow; its class's header must come with it, or the text is invalid.
    source = textwrap.dedent(
        """\
        class Data:
            @classmethod
            def reduce(cls, p):
                return cls.pickle(p)

            @classmethod
            def pickle(cls, op):
                return op
        """
    )
    tree = ast.parse(source)
    shape = layout(tree)
    sliced = cut(source, tree, shape, {})
    ast.parse(sliced.text)
    assert "class Data:" in sliced.text and "def pickle" in sliced.text


def test_a_cut_that_libcst_rejects_falls_back_to_the_whole_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qig_guard.engine import gating
    from qig_guard.engine.checker import check_source

    def broken(source: str, *args: object) -> Slice:
        return Slice("def (:\n" + source, {}, 1)

    monkeypatch.setattr(gating, "cut", broken)
    source = "import torch\n\n\ndef restore(path):\n    return torch.load(path)\n"
    result = check_source("m.py", source.encode(), Config(), [UnsafeCheckpointLoad])
    assert [(f.line, f.code) for f in result.findings] == [(5, "QIG010")]


def test_compiled_gates_decide_as_the_gates_do() -> None:
    from qig_guard.engine.checker import own_index
    from qig_guard.engine.parsing import split_lines
    from qig_guard.engine.slicing import unit_text
    from qig_guard.rules import all_codes, load_rule

    rules = [load_rule(code) for code in all_codes()]
    sources = [example.code for rule in rules for example in rule.INVALID] + [
        source for rule in rules for source in rule.VALID
    ]
    config = Config()
    compared = 0
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        code = code_text(source)
        scope = FileScope(config, own_index(source, config), aliases(code), source=source)
        scope.identifiers = unit_identifiers(code, scope)
        lines = split_lines(code)
        units = [Unit(code, scope.identifiers)] + [
            Unit(text, unit_identifiers(text, scope))
            for text in (unit_text(lines, part) for part in layout(tree).units)
        ]
        for rule in rules:
            test = rule.gate.compile(scope)
            for unit in units:
                assert test(unit) == rule.gate.holds(unit, scope), (rule.code, unit.text)
                compared += 1
    assert compared > 1000


def test_only_callees_the_rules_callees_gate_holds_in_are_read() -> None:
    source = textwrap.dedent(
        """\
        import numpy as np

        def unit(v):
            return v / np.linalg.norm(v)

        def log_step(step):
            print("step", step)

        def drift(ocean_basin, other_basin):
            log_step(1)
            return 1 - np.dot(unit(ocean_basin), unit(other_basin))
        """
    )
    selection = select("m.py", source, Config(), [EuclideanBasinDistance], EMPTY)
    assert selection.sliced is not None
    assert "def unit" in selection.sliced.text  # a normaliser: its argument stays a basin
    assert "def log_step" not in selection.sliced.text


def test_a_definition_gate_holds_where_a_unit_defines_such_a_function() -> None:
    source = textwrap.dedent(
        """\
        def outer(a, b):
            def _pair_dist(x, y):
                return x - y
            return _pair_dist(a, b)

        def caller(a, b):
            return fisher_distance(a, b) + _pair_dist(a, b)
        """
    )
    code = code_text(source)
    scope = FileScope(Config(), EMPTY, aliases(code), source=source, code=code)
    scope.identifiers = unit_identifiers(code, scope)
    test = Defines("distance", "dist").compile(scope)
    outer, caller = source.split("\n\n")
    assert test(Unit(outer, unit_identifiers(outer, scope)))  # nested, by its words
    assert not test(Unit(caller, unit_identifiers(caller, scope)))  # calls only
    continued, scope = _scoped("def \\\n  basin_distance(a, b):\n    return a - b\n")
    assert Defines("distance").holds(continued, scope)  # a line continuation after `def`


def test_only_a_helper_named_a_distance_reads_its_callers() -> None:
    source = textwrap.dedent(
        """\
        import numpy as np

        def pair_distance(a, b):
            return float(np.linalg.norm(a - b))

        def spread(a, b):
            distance = np.linalg.norm(a - b)
            return distance

        def step(state):
            return pair_distance(state.current_basin, state.anchor_basin)

        def summary(state):
            return spread(state.current_basin, state.anchor_basin)
        """
    )
    selection = select("m.py", source, Config(), [EuclideanBasinDistance], EMPTY)
    assert selection.sliced is not None
    text = selection.sliced.text
    assert "def pair_distance" in text and "def step" in text  # its callers pass basins
    assert "def summary" not in text  # ``spread`` only says "distance" in its body


@pytest.mark.parametrize(
    "source",
    [
        'doc = """say \\"""hi\\""" twice"""\nbasin = load()\n',
        "path = r'a\\\nb \\\nc'\nbasin = load()\n",
        "s = 'it\\'s a \"quote\"'\nbasin = load()\n",
        "s = '''one ''' + 'two' # a 'comment\nbasin = load()\n",
    ],
)
def test_strings_end_where_pythons_tokenizer_ends_them(source: str) -> None:
    code = code_text(source)
    assert code.count("\n") == source.count("\n")
    assert code.splitlines()[-1] == "basin = load()"  # the code after the string is code
    names = unit_identifiers(code, FileScope(Config(), EMPTY, aliases(code)))
    assert not {"say", "hi", "twice", "quote", "comment"} & names


@given(st.text(alphabet="as has.x_é1 \t\n\\(", max_size=40))
@settings(max_examples=300, deadline=None)
def test_standalone_matches_are_those_of_a_lookbehind(text: str) -> None:
    literal = re.compile(r"as[ \t\\\n]+([^\W\d]\w*)")
    behind = re.compile(r"(?<![\w.])as[ \t\\\n]+([^\W\d]\w*)")
    found = [(m.span(), m.group(1)) for m in standalone(literal, text)]
    assert found == [(m.span(), m.group(1)) for m in behind.finditer(text)]
    assert aliases("with has as y:\n") == {"y": "has"}  # an ``as`` right after "has"


@given(st.text(alphabet="ab_1.( \t\n\x1c\u00e9\u0661\u212a", max_size=40))
@settings(max_examples=300, deadline=None)
def test_an_identifier_pattern_finds_what_its_regex_finds(text: str) -> None:
    for pattern in (r"[^\W\d]\w*", r"(?<![\w.])([^\W\d]\w*)[ \t]*\(", r"\b(ab|a)\b"):
        assert IdentifierPattern(pattern).findall(text) == re.findall(pattern, text)


def test_an_identifier_pattern_refuses_whitespace_classes() -> None:
    # In ASCII text, only these read differently under re.ASCII ("\x1c" is Unicode space).
    assert re.findall(r"\s", "\x1c") != re.findall(r"\s", "\x1c", re.ASCII)
    for pattern in (r"a\s*b", r"a\Sb"):
        with pytest.raises(ValueError, match=r"re\.ASCII"):
            IdentifierPattern(pattern)


def _unit(source: str) -> Unit:
    """A whole snippet as one unit, with its ``ast`` nodes."""
    return Unit(source, frozenset(), tuple(ast.parse(source).body))


def test_a_weighted_sum_gate_reads_the_tree() -> None:
    scope = FileScope(Config(), EMPTY)
    weighted = WeightedSum()
    for source in (
        "a + w * b\n",
        "(w * a) + self.b\n",
        "a + (\n  w\n  * b)\n",
        "f(x=0.9 * a + 0.1 * b)\n",
        "None + w * b\n",  # a name to libcst
    ):
        assert weighted.holds(_unit(source), scope), source
    for source in (
        "a + b\nc = w * d\n",
        "a += w * b\n",
        "a + w @ b\n",
        "a + (w ** 2)\n",
        "f(a) + w * b\n",
        "a[0] + w * b\n",
        "1 + w * b\n",
    ):
        assert not weighted.holds(_unit(source), scope), source
    assert weighted.holds(Unit("a = 1\n", frozenset()), scope)  # nodes not known: it may


def _scoped(source: str) -> tuple[Unit, FileScope]:
    """A whole snippet as one unit, with the scope of a file of that text."""
    code = code_text(source)
    scope = FileScope(Config(), EMPTY, code=code)
    scope.identifiers = unit_identifiers(code, scope)
    return Unit(code, scope.identifiers), scope


def test_a_calls_gate_reads_the_called_names_words() -> None:
    calls = Calls("blend", "lerp")
    for source in (
        "mixer.blend(a, b)\n",
        "x.lerp_(y, 0.5)\n",
        "blend_basins (a,\n b)\n",
        "(mixer.blend)(a)\n",
        "blend \\\n(a)\n",
    ):
        assert calls.holds(*_scoped(source)), source
    for source in ("blend = 2\n", "mixer.blend\n", "f(blend)\n", "blender(a)\n", "f('blend(')\n"):
        assert not calls.holds(*_scoped(source)), source


@given(
    st.sampled_from(["blend", "x.lerp_", "(blend)", "f", "blend[0]", "blender"]),
    st.text(" \n\\", max_size=3),
)
@settings(max_examples=100, deadline=None)
def test_a_calls_gate_holds_wherever_python_calls_such_a_name(func: str, gap: str) -> None:
    source = f"r = ({func}{gap}(a))\n"
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    named = [
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
    ]
    if any({"blend", "lerp"} & set(words(name)) for name in named):
        assert Calls("blend", "lerp").holds(*_scoped(source)), source


def test_a_named_definition_gate_reads_definitions_at_any_depth() -> None:
    sleep = InNamedDefinition("sleep_functions")
    for source in (
        "def dream(m):\n    pass\n",
        "def f():\n    class SleepCycle:\n        x = 1\n",
        "async def \\\n  consolidate():\n    pass\n",
    ):
        assert sleep.holds(*_scoped(source)), source
    for source in (
        "import time\ndef f():\n    time.sleep(1)\n",
        "dream = 1\n",
        "s = 'def dream'\n",
    ):
        assert not sleep.holds(*_scoped(source)), source
    _, scope = _scoped("class SleepProtocol:\n    def run(self):\n        pass\n")
    method = Unit("    def run(self):\n        pass\n", frozenset({"run", "self"}))
    method.enclosing = "SleepProtocol"
    assert sleep.holds(method, scope)


def test_the_fields_of_an_f_string_are_code() -> None:
    source = 'log(f"saved {pickle.dumps(basin)!r} at {when:{width}} {{not code}}")\n'
    names = unit_identifiers(code_text(source), FileScope(Config(), EMPTY))
    assert {"pickle", "dumps", "basin", "when", "width"} <= names
    assert not {"saved", "at", "not", "code"} & names
    assert code_text('x = f"""a\n{b - c}\nd"""\n').count("\n") == 3


def test_a_units_gate_sees_the_assignments_of_the_globals_it_reads() -> None:
    source = textwrap.dedent(
        """\
        import torch

        try:
            from sleep_tools import consolidate_all
            delta = current_basin - target_basin
        except ImportError:
            delta = None


        def report():
            return torch.norm(delta)


        def unrelated():
            return torch.norm(x)
        """
    )
    selection = select("m.py", source, Config(), [EuclideanBasinDistance], EMPTY)
    assert selection.sliced is not None
    assert "def report" in selection.sliced.text
    assert "def unrelated" not in selection.sliced.text
    shape = layout(ast.parse(source))
    assert [unit.always for unit in shape.units] == [True, True, False, False]


@pytest.mark.parametrize("quote", ['"', "'"])
def test_a_string_left_open_ends_with_its_line(quote: str) -> None:
    # A syntax error. The string takes the rest of its line (the next line is code
    # again), in one match: retried at each later quote, it took quadratic time.
    code = code_text(f"x = {quote}never closed \\{quote} hidden_word\nbasin = 1\n")
    assert "hidden_word" not in code and code.splitlines()[1] == "basin = 1"
    assert code_text('s = """never closed\nhidden_word = 1\n') == 's = ""\n\n'


@pytest.mark.parametrize(
    "oddity",
    ['s = """a\rb"""\n', 'm = f"""{basin\n    .sum()} done"""\n'],
    ids=["lone-carriage-return", "f-string-field-over-lines"],
)
def test_gated_findings_keep_their_lines_when_gates_cannot_read_lines_as_is(
    oddity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone "\\r" in a string, or an f-string field over lines, changes the count of
    lines in the code gates read: units are then read from the source itself."""
    from qig_guard.engine.checker import check_source

    source = f"import torch\n{oddity}\n\ndef restore(path):\n    return torch.load(path)\n"
    gated = check_source("m.py", source.encode(), Config(), [UnsafeCheckpointLoad])
    monkeypatch.setenv("QIG_GUARD_PLAIN", "1")
    plain = check_source("m.py", source.encode(), Config(), [UnsafeCheckpointLoad])
    assert [(f.line, f.code) for f in gated.findings] == [(f.line, f.code) for f in plain.findings]
    lines = split_lines(source)  # a lone "\r" breaks a line, as for Python's tokenizer
    assert [f.line for f in gated.findings] == [len(lines)]
