"""The project index: what the run's classes define about basin attributes.

Each file is summarised on its own (:func:`file_facts`, stdlib ``ast``, about
12x faster than libcst) and the summaries are merged into one
:class:`ProjectFacts` for the run. Only files whose text writes a basin-ish
attribute on ``self`` (or stores a basin-ish class in one) are parsed; the
others cannot contribute. Summaries are cached by content hash, and the
merged facts' :attr:`ProjectFacts.digest` is part of every result's cache key,
so a change to what the project defines invalidates the results that may
depend on it.

Recorded per class: its methods; its *setters*, methods other than
``__init__`` that assign ``self.ATTR`` from one of their parameters (the
class's own way in, whatever the method is called); which classes it keeps
in its attributes (``self.basin_matcher = BasinMatcher(...)``); the kinds of
value its attributes are assigned; the methods that return a basin read from
an object or a checkpoint (``return self.basin.clone()``, a matcher output or
an extractor) and the calls its attributes are assigned from
(``self.identity = extract_signature(model)``, ``self.anchor = load_basin(p)``).
A module's own functions are recorded as the methods of a class named ``""``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from qig_guard.facts import kept_trees
from qig_guard.facts.kinds import NOT_TENSORS, ast_kind
from qig_guard.facts.torch_api import VALUE_KEEPING_METHODS
from qig_guard.facts.vocabulary import names_a_basin
from qig_guard.facts.words import words

if TYPE_CHECKING:
    from qig_guard.config import Config

FORMAT = "9"
BASIN_WORDS = ("basin", "attractor")
UNKNOWN = "?"  # an attribute also assigned something other than a class instance


@lru_cache(maxsize=8)
def relevance(extra_words: tuple[str, ...] = ()) -> Callable[[bytes], bool]:
    """Whether a file's text may matter to the index: a self-attribute write that may
    concern a basin (``self.reference_basin =``, ``self.identity_attractor: T =``,
    ``self.matcher = BasinMatcher(``; ``extra_words`` adds configured names: the
    protected attribute, the basin owners), a distance module kept in an attribute
    (``self.criterion = nn.MSELoss()``), a method returning a basin attribute or entry,
    or a module-level normalising function.

    Each shape is its own regex that starts with a literal (``self.``, a line break), which
    the regex engine finds fast; one alternation of them, some anchored at line starts,
    was tried at every position. An indented ``return`` cannot start a valid file."""
    alternatives = "|".join(
        re.escape(w) for w in sorted({*BASIN_WORDS, *(w.lower() for w in extra_words)})
    )
    word = rf"\w*(?i:{alternatives})\w*".encode()
    searches = [
        re.compile(rb"self\.%s[ \t]*(?::[^=\n]+)?=(?!=)" % word).search,
        re.compile(rb"self\.\w+[ \t]*=[ \t]*%s\(" % word).search,
        re.compile(
            rb"self\.\w+[ \t]*=[ \t]*[\w.]*(?:MSELoss|PairwiseDistance|CosineSimilarity)\("
        ).search,
        re.compile(
            rb"\n[ \t]+return[ \t]+[\w.]+\.\w*(?i:basin)\w*(?:\.\w+\(\))*[ \t]*$", re.M
        ).search,
        re.compile(rb"\n[ \t]+return[ \t]+\w+\[['\"]\w*(?i:basin)").search,
    ]
    function = rb"def[ \t]+\w*(?i:normali[sz]e|simplex|project)\w*[ \t]*\("
    searches.append(re.compile(rb"\n" + function).search)
    at_start = re.compile(function).match

    def relevant(data: bytes) -> bool:
        return any(search(data) for search in searches) or at_start(data) is not None

    return relevant


@dataclass(frozen=True)
class ClassFacts:
    """One class: methods, the ``self`` attributes it writes, setters as ``(attribute,
    method)``, held classes as ``(attribute, class name)`` and the kinds of value
    assigned to its attributes as ``(attribute, kind)`` (see :mod:`.kinds`)."""

    name: str
    methods: tuple[str, ...]
    writes: tuple[str, ...]
    setters: tuple[tuple[str, str], ...]
    holds: tuple[tuple[str, str], ...]
    kinds: tuple[tuple[str, str], ...] = ()
    returns_basin: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    keeps_argument: tuple[str, ...] = ()


def _self_writes(
    method: ast.FunctionDef | ast.AsyncFunctionDef, this: str
) -> Iterator[tuple[str, ast.expr | None]]:
    """``(attribute, value)`` for each ``self.attribute = value`` in ``method``."""
    for node in _statements(method.body):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
            for element in elements:
                if (
                    isinstance(element, ast.Attribute)
                    and isinstance(element.value, ast.Name)
                    and element.value.id == this
                ):
                    single = value if len(elements) == 1 else None
                    yield element.attr, single


def _class_name(call: ast.expr | None) -> str | None:
    """``BasinMatcher`` for ``BasinMatcher(...)`` or ``mod.BasinMatcher(...)``."""
    if not isinstance(call, ast.Call):
        return None
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name if name and name[:1].isupper() else None


def _stored_basin(node: ast.expr) -> bool:
    """``self.target_basin.clone()``, ``model.basin``, ``ckpt["basin"]``: a basin read from
    an object or a checkpoint (a local ``basin`` computed from text is often an item's
    coordinates, not an identity, so it does not count)."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in VALUE_KEEPING_METHODS
    ):
        node = node.func.value
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        key = node.slice.value
        return isinstance(key, str) and names_a_basin(key)
    return isinstance(node, ast.Attribute) and names_a_basin(node.attr)


def _blocks(node: ast.AST) -> list[ast.stmt]:
    """The statements directly in ``node``'s blocks (a body, an ``else``, a handler's
    body, a ``case``'s body): statements hold no statements anywhere else."""
    found: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody"):
        block = getattr(node, name, None)
        if type(block) is list:
            found.extend(block)
    for handler in getattr(node, "handlers", ()):
        found.extend(handler.body)
    for case in getattr(node, "cases", ()):
        found.extend(case.body)
    return found


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in ``body`` and in the blocks below it, nested functions and
    classes included: a walk that skips expressions, where most nodes are."""
    pending = list(reversed(body))
    while pending:  # in source order
        node = pending.pop()
        yield node
        pending.extend(reversed(_blocks(node)))


def _returns_basin(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Every ``return`` of the function (not of nested ones) gives a basin."""
    returned: list[ast.expr] = []
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            returned.append(node.value)
        pending.extend(_blocks(node))
    return bool(returned) and all(_stored_basin(value) for value in returned)


def _callee(value: ast.expr | None) -> str | None:
    """``extract_signature`` for ``extract_signature(model)`` or ``m.extract_signature(...)``
    (not a class: ``BasinEncoder(...)`` constructs a module, not a vector)."""
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name if name and not name[:1].isupper() else None


# A loader or extractor's verb: `load_basin`, `extract_basin`, `get_current_basin`.
_LOADER_WORDS = frozenset({"load", "extract", "read", "restore", "get", "current", "fetch"})


def _loads_basin(callee: str) -> bool:
    return names_a_basin(callee) and bool(_LOADER_WORDS.intersection(words(callee)))


_ELEMENTWISE = (ast.Div, ast.Mult, ast.Add, ast.Sub, ast.Pow)


def _keeps_argument(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A one-argument transformation of a vector (``fisher_normalize(v)``,
    ``to_simplex(p, eps=1e-10)``): one required parameter, and every ``return`` an
    element-wise arithmetic expression of it or of locals computed from it
    (``return p / p.sum()``), not a reduction (``np.sum(p)``) or a comparison."""
    arguments = function.args
    required = len(arguments.posonlyargs) + len(arguments.args) - len(arguments.defaults)
    if required != 1 or arguments.vararg is not None:
        return False
    derived = {(arguments.posonlyargs or arguments.args)[0].arg}
    returned: list[ast.expr] = []
    for node in function.body:
        for inner in ast.walk(node):
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                break
            if isinstance(inner, ast.Assign) and len(inner.targets) == 1:
                target = inner.targets[0]
                if isinstance(target, ast.Name) and _mentions(inner.value, derived):
                    derived.add(target.id)
            elif isinstance(inner, ast.Return) and inner.value is not None:
                returned.append(inner.value)
    return bool(returned) and all(
        isinstance(value, ast.BinOp)
        and isinstance(value.op, _ELEMENTWISE)
        and _mentions(value.left, derived)
        for value in returned
    )


def _mentions(node: ast.expr, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def _module_facts(tree: ast.Module) -> ClassFacts:
    """The module's own functions, as the methods of a class named ``""``."""
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return ClassFacts(
        "",
        tuple(f.name for f in functions),
        (),
        (),
        (),
        (),
        tuple(sorted(f.name for f in functions if _returns_basin(f))),
        (),
        tuple(sorted(f.name for f in functions if _keeps_argument(f))),
    )


def _class_facts(node: ast.ClassDef) -> ClassFacts:
    methods: list[str] = []
    writes: set[str] = set()
    setters: set[tuple[str, str]] = set()
    holds: set[tuple[str, str]] = set()
    kinds: set[tuple[str, str]] = set()
    returns_basin: list[str] = []
    sources: set[tuple[str, str]] = set()
    for item in node.body:
        if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        methods.append(item.name)
        if _returns_basin(item):
            returns_basin.append(item.name)
        arguments = [*item.args.posonlyargs, *item.args.args]
        if not arguments or any(
            isinstance(d, ast.Name) and d.id in {"staticmethod", "classmethod"}
            for d in item.decorator_list
        ):
            continue
        this = arguments[0].arg
        parameters = {a.arg for a in [*arguments[1:], *item.args.kwonlyargs]}
        for attribute, value in _self_writes(item, this):
            writes.add(attribute)
            callee = _callee(value)
            if callee is not None:
                sources.add((attribute, callee))
            kind = ast_kind(value) if value is not None else None
            if kind is not None:
                kinds.add((attribute, kind))
            if value is not None and not (isinstance(value, ast.Constant) and value.value is None):
                holds.add((attribute, _class_name(value) or UNKNOWN))
            if (
                item.name != "__init__"
                and value is not None
                and any(isinstance(n, ast.Name) and n.id in parameters for n in ast.walk(value))
            ):
                setters.add((attribute, item.name))
    return ClassFacts(
        node.name,
        tuple(methods),
        tuple(sorted(writes)),
        tuple(sorted(setters)),
        tuple(sorted(holds)),
        tuple(sorted(kinds)),
        tuple(sorted(returns_basin)),
        tuple(sorted(sources)),
    )


def index_words(config: Config) -> tuple[str, ...]:
    """The configured names that make a file worth indexing, besides the basin words."""
    names = (config.protected_attribute, *config.basin_owners, *config.basin_names)
    return tuple(sorted({n.replace("*", "") for n in names} - {""}))


def file_facts(data: bytes, extra_words: tuple[str, ...] = ()) -> tuple[ClassFacts, ...]:
    """The classes of one file's source that can matter to the index (none when the
    text writes no basin-ish attribute, or does not parse)."""
    if not relevance(extra_words)(data):
        return ()
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    kept_trees.keep(data, tree)  # for the check, in a worker that keeps trees
    classes = [_class_facts(n) for n in _statements(tree.body) if isinstance(n, ast.ClassDef)]
    return (_module_facts(tree), *classes)


@dataclass(frozen=True)
class ProjectFacts:
    """The merged index of a run (empty when a file is checked on its own)."""

    classes: tuple[ClassFacts, ...] = ()
    _setters: dict[str, tuple[tuple[str, str], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _held: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)
    _writers: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)
    _kinds: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)
    _methods: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)
    _returns_basin: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)
    _keeps_argument: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)
    _basin_attributes: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)
    _holders: dict[frozenset[str], frozenset[str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def merge(cls, summaries: Iterable[tuple[ClassFacts, ...]]) -> ProjectFacts:
        classes = tuple(sorted({c for summary in summaries for c in summary}, key=repr))
        setters: dict[str, list[tuple[str, str]]] = {}
        held: dict[str, set[str]] = {}
        writers: dict[str, set[str]] = {}
        kinds: dict[str, set[str]] = {}
        methods: dict[str, set[str]] = {}
        for klass in classes:
            methods.setdefault(klass.name, set()).update(klass.methods)
            for attribute in klass.writes:
                writers.setdefault(attribute, set()).add(klass.name)
            for attribute, method in klass.setters:
                setters.setdefault(attribute, []).append((klass.name, method))
            for attribute, name in klass.holds:
                held.setdefault(attribute, set()).add(name)
            for attribute, kind in klass.kinds:
                kinds.setdefault(attribute, set()).add(kind)
        returns_basin = frozenset(name for klass in classes for name in klass.returns_basin)
        keeps_argument = frozenset(name for klass in classes for name in klass.keeps_argument)
        basin_attributes = frozenset(
            attribute
            for klass in classes
            for attribute, callee in klass.sources
            if callee in returns_basin or _loads_basin(callee)
        )
        return cls(
            classes,
            {a: tuple(v) for a, v in setters.items()},
            {a: frozenset(v) for a, v in held.items()},
            {a: frozenset(v) for a, v in writers.items()},
            {a: frozenset(v) for a, v in kinds.items()},
            {c: frozenset(v) for c, v in methods.items()},
            returns_basin,
            keeps_argument,
            basin_attributes,
        )

    @property
    def digest(self) -> str:
        """Identifies these facts, for cache keys."""
        text = json.dumps([_to_json(c) for c in self.classes], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def setters_of(self, attribute: str) -> tuple[tuple[str, str], ...]:
        """``(class, method)`` pairs: the project's setters for ``attribute``."""
        return self._setters.get(attribute, ())

    @cached_property
    def guarded_attributes(self) -> frozenset[str]:
        """The attributes some class of the project sets in a setter."""
        return frozenset(self._setters)

    def writers_of(self, attribute: str) -> frozenset[str]:
        """Classes that write ``self.attribute`` in some method."""
        return self._writers.get(attribute, frozenset())

    def returns_basin(self, function: str) -> bool:
        """True when a function or method of the project so named returns a basin."""
        return function in self._returns_basin

    def keeps_argument(self, function: str) -> bool:
        """True when the project's module function so named transforms its one vector
        argument element-wise (a normaliser): a basin in, a basin out."""
        return function in self._keeps_argument

    def holds_basin(self, attribute: str) -> bool:
        """True when the project assigns ``self.attribute`` a basin from a call
        (``self.identity = extract_signature(m)`` where that returns a basin, or
        ``self.anchor = load_basin(path)``)."""
        return attribute in self._basin_attributes

    @property
    def basin_holders(self) -> frozenset[str]:
        """The functions and attributes the project knows to hold a basin."""
        return self._returns_basin | self._basin_attributes

    def never_tensor(self, attribute: str) -> bool:
        """True when the project assigns ``self.attribute`` values of known kinds and none
        is a torch tensor (``self.ocean_basin = np.zeros(64)``): it carries no gradient."""
        kinds = self._kinds.get(attribute, frozenset())
        return bool(kinds) and kinds <= NOT_TENSORS

    def holders(self, classes: frozenset[str]) -> frozenset[str]:
        """The attributes in which the project stores an instance of one of ``classes``
        (``criterion`` after ``self.criterion = nn.MSELoss()``), computed once per set."""
        found = self._holders.get(classes)
        if found is None:
            found = self._holders[classes] = frozenset(
                attribute for attribute, held in self._held.items() if not classes.isdisjoint(held)
            )
        return found

    def classes_held_in(self, attribute: str) -> frozenset[str]:
        """Classes the project stores in attributes named ``attribute``; empty when some
        assignment to such an attribute is not a class instance (it could hold anything)."""
        held = self._held.get(attribute, frozenset())
        return frozenset() if UNKNOWN in held else held

    def defines(self, klass: str, method: str) -> bool:
        """True when the project's class ``klass`` defines ``method``."""
        return method in self._methods.get(klass, frozenset())


def _to_json(klass: ClassFacts) -> list[object]:
    return [
        klass.name,
        list(klass.methods),
        list(klass.writes),
        klass.setters,
        klass.holds,
        klass.kinds,
        list(klass.returns_basin),
        klass.sources,
        list(klass.keeps_argument),
    ]


def _from_json(item: list[object]) -> ClassFacts:
    name, methods, writes, setters, holds, kinds, returns_basin, sources, keeps = item
    assert isinstance(name, str) and isinstance(methods, list) and isinstance(writes, list)
    assert isinstance(setters, list) and isinstance(holds, list) and isinstance(kinds, list)
    assert isinstance(returns_basin, list) and isinstance(sources, list)
    assert isinstance(keeps, list)
    return ClassFacts(
        name,
        tuple(str(m) for m in methods),
        tuple(str(w) for w in writes),
        tuple((str(a), str(b)) for a, b in setters),
        tuple((str(a), str(b)) for a, b in holds),
        tuple((str(a), str(b)) for a, b in kinds),
        tuple(str(r) for r in returns_basin),
        tuple((str(a), str(b)) for a, b in sources),
        tuple(str(k) for k in keeps),
    )


# Computes many summaries: ``many(summary, sources)`` is ``[summary(s) for s in sources]``.
Many = Callable[[Callable[[bytes], "Summary"], list[bytes]], list["Summary"]]
Summary = tuple["ClassFacts", ...]


def _one_by_one(
    summary: Callable[[bytes], tuple[ClassFacts, ...]], sources: list[bytes]
) -> list[tuple[ClassFacts, ...]]:
    return [summary(data) for data in sources]


def _stored(entry: object) -> tuple[ClassFacts, ...] | None:
    """A summary read back from the index, or ``None`` when it is not one."""
    if not isinstance(entry, list):
        return None
    try:
        return tuple(_from_json(item) for item in entry)
    except (ValueError, TypeError, AssertionError):
        return None


class FactsCache:
    """File summaries by content hash, kept in one index file under ``directory`` (best
    effort): a warm run reads one file instead of searching every source again."""

    def __init__(self, directory: Path | None, extra_words: tuple[str, ...] = ()) -> None:
        self.directory = directory / f"facts-v{FORMAT}" if directory is not None else None
        self.extra_words = extra_words
        self._salt = "\0".join(extra_words).encode()

    def summary(self, data: bytes) -> tuple[ClassFacts, ...]:
        """One file's summary (empty when nothing in it can matter to the index)."""
        return file_facts(data, self.extra_words)

    def summaries(
        self, sources: Iterable[bytes], many: Many | None = None
    ) -> list[tuple[ClassFacts, ...]]:
        """The summary of each of ``sources``, from the index where it has them; the
        index then holds exactly these files' summaries. ``many(summary, datas)`` computes
        the missing ones (by default one after the other; the runner uses its workers)."""
        many = many or _one_by_one
        sources = list(sources)
        if self.directory is None:
            return many(self.summary, sources)
        index = self.directory / "index.json"
        try:
            known = json.loads(index.read_text("utf-8"))
            assert isinstance(known, dict)
        except (OSError, ValueError, AssertionError):
            known = {}
        digests = [hashlib.sha256(self._salt + b"\0" + data).hexdigest() for data in sources]
        found: list[tuple[ClassFacts, ...] | None] = [
            _stored(known.get(digest)) for digest in digests
        ]
        missing = [i for i, summary in enumerate(found) if summary is None]
        computed = many(self.summary, [sources[i] for i in missing])
        for i, summary in zip(missing, computed, strict=True):
            found[i] = summary
        complete = [summary or () for summary in found]
        used = {
            digest: [_to_json(c) for c in summary]
            for digest, summary in zip(digests, complete, strict=True)
        }
        if used.keys() != known.keys() or missing:
            self._save(index, dict(used))
        return complete

    def _save(self, index: Path, entries: dict[str, object]) -> None:
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=index.parent, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(entries, stream, separators=(",", ":"))
            os.replace(temporary, index)
        except OSError:
            pass


EMPTY = ProjectFacts()
