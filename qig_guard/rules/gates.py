"""Gates: the cheap facts a rule declares must hold in a unit of code for it to fire.

A rule states its gate as data (``gate = Identifiers("load_state_dict") | ...``); the
engine evaluates every selected rule's gate once per unit of a file (see
:mod:`qig_guard.engine.slicing`) over the unit's identifiers, read from its text without
parsing, and, where a gate reads a shape of code (:class:`WeightedSum`), over the unit's
CPython ``ast`` that the engine splits the file with. A file no gate selects is not
parsed by libcst; of the others, only the selected units are. A gate must never reject
a unit in which its rule would report: the trigger-agreement tests run every rule case,
gated and plain, and compare.

Identifiers are read from the whole text (strings and comments too), and an import
alias also counts as the name it imports (``from torch import save as s`` puts
``save`` in every unit that says ``s``), so a gate only ever over-approximates.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from qig_guard.facts.vocabulary import basin_attribute
from qig_guard.facts.words import matches_any, name_words
from qig_guard.facts.words import words as split

if TYPE_CHECKING:
    from qig_guard.config import Config
    from qig_guard.facts.project import ProjectFacts


class IdentifierPattern:
    """A regex over identifiers, compiled twice: in ASCII text (``str.isascii`` costs
    nothing) its ``re.ASCII`` form finds the same matches in 40% to 60% less time. Only
    ``\\s`` would differ there (it matches ``\\x1c`` to ``\\x1f`` unless ASCII), so a
    pattern may not use it."""

    def __init__(self, pattern: str) -> None:
        if "\\s" in pattern or "\\S" in pattern:
            raise ValueError(f"\\s and \\S match differently under re.ASCII: {pattern}")
        self._unicode = re.compile(pattern)
        self._ascii = re.compile(pattern, re.ASCII)

    def findall(self, text: str) -> list[Any]:
        return (self._ascii if text.isascii() else self._unicode).findall(text)


_IDENTIFIER = IdentifierPattern(r"[^\W\d]\w*")
# `as NAME` (see standalone); the name before it is read backwards.
_AS = re.compile(r"as[ \t\\\n]+([^\W\d]\w*)")
_BEFORE = re.compile(r"([^\W\d]\w*)[ \t\\\n]+$")
# A number literal (as ``number_value`` reads one: underscores allowed), and one with
# the sign before it.
_LITERAL = r"\d[\d_]*\.?[\d_]*(?:[eE][-+]?\d[\d_]*)?|\.\d[\d_]*(?:[eE][-+]?\d[\d_]*)?"
_NUMBER = re.compile(rf"(-[\s(]*)?(?<![\w.])({_LITERAL})")


# Comments, and string literals (with their prefixes' quotes): triple-quoted first. As
# Python's tokenizer reads them, a backslash escapes any character, a line break
# included (`\"""` in a docstring, `'a\` continued on the next line), so that a quote
# there never starts a string of its own. A string left open (a syntax error) ends with
# its line, or the file: a regex that failed there and retried at each later quote took
# time quadratic in the line's length.
_PROSE = re.compile(
    r'"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*(?:"""|\Z)'
    r"|'''[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*(?:'''|\Z)"
    r'|"(?:\\[\s\S]|[^"\\\n])*(?:"|(?=\n)|\Z)'
    r"|'(?:\\[\s\S]|[^'\\\n])*(?:'|(?=\n)|\Z)"
    r"|#[^\n]*"
)
_WORDLIKE = re.compile(r"[-\w.:/]*")


# A replacement field of an f-string (one level of nesting: `{x:{width}}`), or an
# escaped brace.
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")


def _keep_code(match: re.Match[str]) -> str:
    text = match.group(0)
    if text[0] == "#":
        return ""
    if _WORDLIKE.fullmatch(text, 1, len(text) - 1):
        return text  # a key, an attribute or option name: `"basin"`, `"--sync-weight"`
    start = match.start()
    prefix = match.string[max(0, start - 2) : start]
    if "f" in prefix or "F" in prefix:  # an f-string's fields are code: `{pickle.dumps(b)}`
        fields = " ".join(field for field in _FIELD.findall(text) if field)
        return f'"" {fields} ' + "\n" * text.count("\n")
    return '""' + "\n" * text.count("\n")


def code_text(source: str) -> str:
    """``source`` without comments and without string literals that hold spaces (log
    messages, docstrings), though with the code of f-strings' fields: what gates read.
    Line breaks are kept, so its lines are the source's lines."""
    return _PROSE.sub(_keep_code, source)


def standalone(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    r"""The matches of ``pattern`` in ``text`` not preceded by a word character or a dot,
    as ``(?<![\w.])`` before the pattern finds them. A pattern that starts with a literal
    (``as``) is searched from it, many times faster than from the lookbehind, which the
    regex engine tries at every position."""
    position = 0
    while (match := pattern.search(text, position)) is not None:
        start = match.start()
        before = text[start - 1] if start else ""
        if before and (before.isalnum() or before in "_."):
            position = start + 1  # a later match may start inside this one
            continue
        yield match
        position = max(match.end(), start + 1)


def aliases(source: str) -> dict[str, str]:
    """``{alias: name}`` for each ``name as alias`` in ``source`` (imports, and also
    ``with``/``except`` targets: a superset)."""
    found = {}
    for match in standalone(_AS, source):
        before = _BEFORE.search(source, max(0, match.start() - 80), match.start())
        if before is not None:
            found[match.group(1)] = before.group(1)
    return found


@dataclass
class FileScope:
    """What gates may know of the file beyond the unit: the configuration, the
    project index, the file's ``as`` aliases and every identifier it uses."""

    config: Config
    project: ProjectFacts
    alias_of: Mapping[str, str] = field(default_factory=dict)
    # The module each name imported at module level comes from (``load``: ``torch``).
    module_of: Mapping[str, str] = field(default_factory=dict)
    identifiers: frozenset[str] = frozenset()
    source: str = ""
    code: str = ""  # the source as gates read it (see code_text)

    @cached_property
    def listing(self) -> tuple[str, str]:
        """The file's identifiers, one per line, as they are and in lower case."""
        listing = "\n".join(self.identifiers)
        return listing, listing.lower()

    def _containing(self, parts: tuple[str, ...]) -> set[str]:
        """The file's identifiers that contain one of ``parts`` (lower case), in any case."""
        listing, lowered = self.listing
        if len(lowered) != len(listing):  # lower-casing changed lengths: search slowly
            return {i for i in self.identifiers if any(p in i.lower() for p in parts)}
        found = set()
        for match in _alternatives(parts).finditer(lowered):
            start = lowered.rfind("\n", 0, match.start()) + 1
            end = lowered.find("\n", match.end())
            found.add(listing[start : end if end >= 0 else len(listing)])
        return found

    _found: dict[object, frozenset[str]] = field(default_factory=dict)
    _file: dict[object, bool] = field(default_factory=dict)

    def those(
        self,
        key: object,
        wanted: Callable[[str], bool],
        spelled: tuple[str, ...] = (),
        among: frozenset[str] | None = None,
    ) -> frozenset[str]:
        """The file's identifiers for which ``wanted`` holds, computed once per ``key``:
        a gate then tests a unit with one set operation. With ``spelled``, only the
        identifiers that contain one of these texts (in any case) are tried; with
        ``among``, only those in it."""
        found = self._found.get(key)
        if found is None:
            tried = self._containing(spelled) if spelled else self.identifiers
            if among is not None:
                tried = among.intersection(tried)
            found = self._found[key] = frozenset(filter(wanted, tried))
        return found


class Unit:
    """A unit's text and the identifiers it uses (see :func:`unit_identifiers`), its
    ``ast`` nodes (``None``: not known, as of a whole file before it is parsed) and the
    class it is a member of."""

    def __init__(
        self,
        text: str,
        identifiers: frozenset[str],
        nodes: tuple[ast.AST, ...] | None = None,
        enclosing: str | None = None,
    ) -> None:
        self.text = text
        self.identifiers = identifiers
        self.nodes = nodes
        self.enclosing = enclosing

    @cached_property
    def numbers(self) -> tuple[float, ...]:
        values = []
        for minus, literal in _NUMBER.findall(self.text):
            try:
                value = float(literal.replace("_", ""))
            except ValueError:
                continue
            values.append(-value if minus else value)
        return tuple(values)


def unit_identifiers(text: str, scope: FileScope, context: Iterable[str] = ()) -> frozenset[str]:
    """The identifiers in ``text``, the ``context`` (its class's name), the names the
    file's aliases among them import and the modules its imported names come from."""
    found = set(_IDENTIFIER.findall(text))
    found.update(context)
    found.update(scope.alias_of[name] for name in found & scope.alias_of.keys())
    found.update(scope.module_of[name] for name in found & scope.module_of.keys())
    return frozenset(found)


@lru_cache(maxsize=64)
def _alternatives(parts: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(part.lower()) for part in sorted(parts)))


_SPELLINGS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _spellings(names: tuple[str, ...]) -> tuple[str, ...]:
    found = _SPELLINGS.get(names)
    if found is None:
        parts = []
        for name in names:
            for word in name_words(name):
                literal = max(re.split(r"[*?\[\]!]", word), key=len)
                parts.append(literal)
        found = _SPELLINGS[names] = tuple(sorted(set(parts)))
    return found


Test = Callable[[Unit], bool]


def _never(unit: Unit) -> bool:
    return False


def _always(unit: Unit) -> bool:
    return True


def _uses(found: frozenset[str]) -> Test:
    if not found:
        return _never
    return lambda unit: not found.isdisjoint(unit.identifiers)


class Gate:
    """A condition on a unit; combine with ``&`` and ``|``."""

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        raise NotImplementedError

    def found(self, scope: FileScope) -> frozenset[str] | None:
        """For a gate that holds exactly where a unit uses one of some identifiers: those
        of the file's identifiers; ``None`` for any other gate."""
        return None

    def compile(self, scope: FileScope) -> Test:
        """This gate as a test of the units of ``scope``'s file, with what can be
        decided once per file decided once (the engine tests many units)."""
        found = self.found(scope)
        if found is not None:
            return _uses(found)
        return lambda unit: self.holds(unit, scope)

    def __and__(self, other: Gate) -> Gate:
        left = self.gates if isinstance(self, AllOf) else (self,)
        return AllOf((*left, *(other.gates if isinstance(other, AllOf) else (other,))))

    def __or__(self, other: Gate) -> Gate:
        left = self.gates if isinstance(self, AnyOf) else (self,)
        return AnyOf((*left, *(other.gates if isinstance(other, AnyOf) else (other,))))


@dataclass(frozen=True)
class AllOf(Gate):
    gates: tuple[Gate, ...]

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return all(gate.holds(unit, scope) for gate in self.gates)

    def compile(self, scope: FileScope) -> Test:
        tests = []
        for gate in self.gates:  # a part that never holds spares compiling the rest
            test = gate.compile(scope)
            if test is _never:
                return _never
            if test is not _always:
                tests.append(test)
        if not tests:
            return _always
        if len(tests) == 1:
            return tests[0]
        return lambda unit: all(test(unit) for test in tests)


@dataclass(frozen=True)
class AnyOf(Gate):
    gates: tuple[Gate, ...]

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return any(gate.holds(unit, scope) for gate in self.gates)

    def compile(self, scope: FileScope) -> Test:
        # The identifier tests of the alternatives become one set.
        used: set[str] = set()
        tests = []
        for gate in self.gates:
            found = gate.found(scope)
            if found is not None:
                used |= found
                continue
            test = gate.compile(scope)
            if test is _always:
                return _always
            if test is not _never:
                tests.append(test)
        if used:
            tests.insert(0, _uses(frozenset(used)))
        if not tests:
            return _never
        if len(tests) == 1:
            return tests[0]
        return lambda unit: any(test(unit) for test in tests)


class Always(Gate):
    """Every unit (a rule that reads the whole module)."""

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return True

    def compile(self, scope: FileScope) -> Test:
        return _always


@dataclass(frozen=True, init=False)
class Identifiers(Gate):
    """The unit uses one of these identifiers (or an alias of one)."""

    names: frozenset[str]

    def __init__(self, *names: str) -> None:
        object.__setattr__(self, "names", frozenset(names))

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return not self.names.isdisjoint(unit.identifiers)

    def found(self, scope: FileScope) -> frozenset[str]:
        return self.names & scope.identifiers


@dataclass(frozen=True)
class Guarded(Gate):
    """The unit uses an attribute that a setter of the project's classes guards (with
    ``basins``, one that also names a basin: see ``vocabulary.basin_attribute``)."""

    basins: bool = False

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return not self.found(scope).isdisjoint(unit.identifiers)

    def found(self, scope: FileScope) -> frozenset[str]:
        config = scope.config
        return scope.those(
            self,
            lambda i: not self.basins or basin_attribute(i, config),
            among=scope.project.guarded_attributes,
        )


@dataclass(frozen=True)
class GuardedWrite(Gate):
    """The unit may write, other than through ``self``, an attribute that the project
    guards with a setter and that names a basin (with ``protected``, also the configured
    ``protected_attribute``): ``.ATTR`` followed by an assignment or augmented
    assignment, an annotation, a subscript, a comma (a tuple target), its ``.data`` or
    an in-place method (``.copy_(``). A superset of QIG002's writes, except those
    through a function (``nn.init.normal_(x.ATTR)``, ``setattr``), which need their own
    gate."""

    protected: bool = False

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return self.compile(scope)(unit)

    def compile(self, scope: FileScope) -> Test:
        names = set(Guarded(basins=True).found(scope))
        if self.protected and scope.config.protected_attribute in scope.identifiers:
            names.add(scope.config.protected_attribute)
        if not names:
            return _never
        alternatives = "|".join(re.escape(name) for name in sorted(names))
        write = re.compile(
            rf"\.(?<!\bself\.)[\s\\]*(?:{alternatives})\b[\s\\)\]]*"
            r"(?:(?:[-+*/@%&|^]|//|\*\*|<<|>>)?=(?!=)|[\[,:]|\.[\s\\]*(?:data\b|\w*_[\s\\]*\())"
        )
        return lambda unit: write.search(unit.text) is not None


@dataclass(frozen=True, init=False)
class Named(Gate):
    """The unit uses an identifier that the configured names in these ``Config``
    fields match by words (``basin_names``: ``ocean_basin``); with ``project``, or one
    the project index knows holds a basin."""

    fields: tuple[str, ...]
    project: bool

    def __init__(self, *fields: str, project: bool = False) -> None:
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "project", project)

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return not self.found(scope).isdisjoint(unit.identifiers)

    def found(self, scope: FileScope) -> frozenset[str]:
        names = _configured(scope.config, self.fields)
        found = scope.those(self, lambda i: matches_any(i, names), _spellings(names))
        if self.project:
            found |= scope.project.basin_holders & scope.identifiers
        return found


def _configured(config: Config, fields: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for name in fields:
        value = getattr(config, name)
        names.extend((value,) if isinstance(value, str) else value)
    return tuple(names)


@dataclass(frozen=True, init=False)
class Text(Gate):
    """The unit's text holds one of these fragments (an operator, a literal)."""

    fragments: tuple[str, ...]

    def __init__(self, *fragments: str) -> None:
        object.__setattr__(self, "fragments", fragments)

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return any(fragment in unit.text for fragment in self.fragments)


@dataclass(frozen=True)
class NumberOutside(Gate):
    """The unit holds a numeric literal outside the range in this ``Config`` field
    (a ``-`` before it, as in ``-(0.5)``, makes it negative; ``0x1`` reads as ``0``)."""

    field: str

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        low, high = getattr(scope.config, self.field)
        return any(not low <= value <= high for value in unit.numbers)


@dataclass(frozen=True, init=False)
class Words(Gate):
    """The unit uses an identifier with one of these words (``fisher`` in
    ``FisherMetric``, ``sync`` in ``"--sync-weight"``)."""

    words: frozenset[str]
    spelled: tuple[str, ...]

    def __init__(self, *wanted: str) -> None:
        object.__setattr__(self, "words", frozenset(wanted))
        object.__setattr__(self, "spelled", tuple(sorted(wanted)))

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return not self.found(scope).isdisjoint(unit.identifiers)

    def found(self, scope: FileScope) -> frozenset[str]:
        return scope.those(self, lambda i: not self.words.isdisjoint(split(i)), self.spelled)


@dataclass(frozen=True)
class InFile(Gate):
    """``test`` holds of the file's whole text (evaluated once per file): for what a
    unit may use without naming it, such as an import under another name."""

    test: Callable[[str], bool]

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        found = scope._file.get(self)
        if found is None:
            found = scope._file[self] = self.test(scope.source)
        return found

    def compile(self, scope: FileScope) -> Test:
        return _always if self.test(scope.source) else _never


@dataclass(frozen=True)
class Pattern(Gate):
    """The unit's text matches ``regex`` (a literal shape: ``.basin[i] =``)."""

    regex: re.Pattern[str]

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return self.regex.search(unit.text) is not None


@dataclass(frozen=True, init=False)
class Binary(Gate):
    """The unit uses ``symbol`` between two operands: after a word character, ``)`` or
    ``]`` and before what ``operand`` matches, whitespace between allowed (``a - b``,
    ``f(x) * (y)``; not ``-1``, ``**`` or ``->``). The same as the regex
    ``[\\w)\\]]\\s*SYMBOL\\s*(?:OPERAND)``, found from the symbol, which is rarer than the
    characters a regex starting with that class would try."""

    symbol: str
    operand: str
    _after: re.Pattern[str]

    def __init__(self, symbol: str, operand: str) -> None:
        object.__setattr__(self, "symbol", symbol)
        object.__setattr__(self, "operand", operand)
        object.__setattr__(self, "_after", re.compile(rf"{re.escape(symbol)}\s*(?:{operand})"))

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        text = unit.text
        for match in self._after.finditer(text):
            end = match.start()
            while end and text[end - 1].isspace():
                end -= 1
            if end and _OPERAND_END.match(text, end - 1):
                return True
        return False


_OPERAND_END = re.compile(r"[\w)\]]")


@dataclass(frozen=True, init=False)
class Holds(Gate):
    """The unit uses an attribute in which the project stores an instance of one of
    these classes (``self.criterion`` after ``self.criterion = nn.MSELoss()``)."""

    classes: frozenset[str]

    def __init__(self, *classes: str) -> None:
        object.__setattr__(self, "classes", frozenset(classes))

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return not self.found(scope).isdisjoint(unit.identifiers)

    def found(self, scope: FileScope) -> frozenset[str]:
        return scope.project.holders(self.classes) & scope.identifiers


# A power's literal exponent, brackets and space allowed before it.
_POWER = re.compile(rf"\*\*[\s\\(]*({_LITERAL})")


@dataclass(frozen=True)
class PowerOf(Gate):
    """The unit raises to a number literal of this value (``** 0.5``, ``**(.5)``,
    ``** 5e-1``): a rule that reads ``number_value(node.right)`` of a power."""

    value: float

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        for match in _POWER.finditer(unit.text):
            try:
                if float(match.group(1).replace("_", "")) == self.value:
                    return True
            except ValueError:  # `1_.5`: not a literal
                continue
        return False


@dataclass(frozen=True)
class WeightedSum(Gate):
    """The unit adds a product to a name or to another product (``a + w * d``,
    ``w * a + v * b``): the two shapes of an interpolation by arithmetic, as CPython's
    ``ast`` reads them (brackets and precedence included). A unit whose nodes are not
    known may."""

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        if unit.nodes is None:
            return True
        return any(_weighted_sum(node) for node in _nodes_below(unit.nodes))


class _Spelled(Gate):
    """The unit's text holds one of the file's identifiers that :meth:`names` finds, in
    the shape ``SHAPE`` (a regex in which ``{names}`` stands for them)."""

    SHAPE: ClassVar[str]

    def names(self, scope: FileScope) -> frozenset[str]:
        raise NotImplementedError

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        return self.compile(scope)(unit)

    def compile(self, scope: FileScope) -> Test:
        named = self.names(scope)
        if not named:
            return _never
        spelled = re.compile(self.SHAPE.format(names="|".join(map(re.escape, sorted(named)))))
        return lambda unit: self.known(unit, named) or spelled.search(unit.text) is not None

    def known(self, unit: Unit, named: frozenset[str]) -> bool:
        """Whether the gate holds of ``unit`` whatever its text."""
        return False


@dataclass(frozen=True, init=False)
class Calls(_Spelled):
    """The unit calls a function or method whose name (``blend`` of ``mixer.blend``) has
    one of these words: such a name before ``(``, brackets and space between allowed
    (``(mixer.blend)(a, b)``)."""

    SHAPE = r"\b(?:{names})[\s\\)]*\("
    words: Words

    def __init__(self, *wanted: str) -> None:
        object.__setattr__(self, "words", Words(*wanted))

    def names(self, scope: FileScope) -> frozenset[str]:
        return self.words.found(scope)


_DEF = re.compile(r"def[\s\\]+([^\W\d]\w*)")  # see standalone


@dataclass(frozen=True, init=False)
class Defines(_Spelled):
    """The unit defines a function (``def NAME``, also nested) whose name has one of
    these words: a rule that reads a function's parameters by its name."""

    SHAPE = r"def[\s\\]+(?:{names})\b"
    words: Words

    def __init__(self, *wanted: str) -> None:
        object.__setattr__(self, "words", Words(*wanted))

    def names(self, scope: FileScope) -> frozenset[str]:
        named = self.words.found(scope)
        if not named:
            return named
        return named.intersection(m.group(1) for m in standalone(_DEF, scope.code))


@dataclass(frozen=True, init=False)
class InNamedDefinition(_Spelled):
    """The unit is code of a function or class that the configured names in these
    ``Config`` fields match by words (``consolidate_toward_basin``, ``class
    SleepProtocol``): it defines one (``def NAME``, ``class NAME``, also nested), or is a
    member of such a class."""

    SHAPE = r"(?:def|class)[\s\\]+(?:{names})\b"
    named: Named

    def __init__(self, *fields: str) -> None:
        object.__setattr__(self, "named", Named(*fields))

    def names(self, scope: FileScope) -> frozenset[str]:
        return self.named.found(scope)

    def known(self, unit: Unit, named: frozenset[str]) -> bool:
        return unit.enclosing in named


def _nodes_below(roots: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """``roots`` and every node below them (``ast.walk``, without its generators)."""
    stack = list(roots)
    node_type = ast.AST
    while stack:
        node = stack.pop()
        yield node
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                stack.extend(item for item in value if isinstance(item, node_type))
            elif isinstance(value, node_type):
                stack.append(value)


def _weighted_sum(node: ast.AST) -> bool:
    if type(node) is not ast.BinOp or type(node.op) is not ast.Add:
        return False
    left, right = _is_product(node.left), _is_product(node.right)
    return (left and right) or (left and _is_name(node.right)) or (right and _is_name(node.left))


def _is_product(node: ast.expr) -> bool:
    return type(node) is ast.BinOp and type(node.op) is ast.Mult


def _is_name(node: ast.expr) -> bool:
    """A chain of names (``a``, ``self.peer.basin``), as libcst's ``dotted_name`` reads
    one: ``True``, ``False`` and ``None`` are names to libcst."""
    while type(node) is ast.Attribute:
        node = node.value
    if type(node) is ast.Constant:
        return node.value is None or type(node.value) is bool
    return type(node) is ast.Name


# A line that a decorated definition starts with (after its decorators).
_DEFINITION = re.compile(r"[ \t]*(?:async[ \t]+def|def|class)(?!\w)")


@dataclass(frozen=True)
class MatMul(Gate):
    """The unit may use ``@`` as an operator (``a @ b``, ``a @= b``, ``(a`` then ``@ b)`` on
    the next line): it holds ``@`` other than a decorator's."""

    def holds(self, unit: Unit, scope: FileScope) -> bool:
        text = unit.text
        at = text.find("@")
        while at >= 0:
            if not _decorates(text, at):
                return True
            at = text.find("@", at + 1)
        return False


def _decorates(text: str, at: int) -> bool:
    """Whether the ``@`` at ``at`` is a decorator's: first on its line (not continued
    from the line before), on lines whose brackets never close more than they open,
    and followed, after any further such decorators at its indentation, by a ``def`` or
    ``class`` there. In brackets, ``@`` can start a line only as an operator, and no
    line there starts with ``def`` or ``class``."""
    start = text.rfind("\n", 0, at) + 1
    indent = text[start:at]
    before = text[max(0, start - 3) : max(0, start - 1)].rstrip("\r")  # the line before's end
    if indent.strip(" \t") or before.endswith("\\"):
        return False
    lines = _lines_from(text, start)
    line = next(lines)
    while True:
        if not _never_overcloses(line):
            return False
        line = next((line for line in lines if line.strip()), "")
        rest = line[len(indent) :]
        if not line.startswith(indent) or rest[:1] in ("", " ", "\t"):
            return False
        if _DEFINITION.match(rest):
            return True
        if rest[0] != "@":
            return False


def _never_overcloses(line: str) -> bool:
    depth = 0
    for character in line:
        if character in "([{":
            depth += 1
        elif character in ")]}":
            depth -= 1
            if depth < 0:
                return False
    return True


def _lines_from(text: str, start: int) -> Iterator[str]:
    """The lines of ``text`` from ``start`` on (split at line feeds, as Python's
    tokenizer splits lines; a ``\\r`` before one stays at the end of its line)."""
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start:end]
        start = end + 1
