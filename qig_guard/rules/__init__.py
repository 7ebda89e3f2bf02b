"""The rule registry.

Each rule lives in a module named ``qigNNN_<name>.py`` in this package. Rule
codes are known from the module names alone, so selecting rules and looking
up cached results never imports libcst; :func:`load_rules` imports the
modules when a file actually has to be checked.

A preview rule (``preview = True`` on its class) is selected only by its full
code or under ``preview``; :func:`preview_codes` finds them in the modules' text,
without importing them, and a test proves it agrees with the classes.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qig_guard.rules.base import Rule

_MODULE = re.compile(r"^qig(\d{3})_\w+$")
_PREVIEW = re.compile(r"^    preview(?:: ClassVar\[bool\])? = True\b", re.MULTILINE)


@lru_cache(maxsize=1)
def _modules() -> dict[str, str]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        match = _MODULE.match(info.name)
        if match:
            found[f"QIG{match.group(1)}"] = info.name
    return dict(sorted(found.items()))


def all_codes() -> tuple[str, ...]:
    """Every rule code, sorted, without importing the rules."""
    return tuple(_modules())


@lru_cache(maxsize=1)
def preview_codes() -> frozenset[str]:
    """The codes of preview rules, read from the rule modules' text."""
    found = set()
    for code, module in _modules().items():
        data = pkgutil.get_data(__name__, f"{module}.py")
        if data is not None and _PREVIEW.search(data.decode("utf-8")):
            found.add(code)
    return frozenset(found)


def select_codes(
    select: Iterable[str], ignore: Iterable[str], preview: bool = False
) -> tuple[str, ...]:
    """Codes chosen by ``select`` minus ``ignore`` (prefixes and ``ALL`` allowed).

    ``ALL`` and prefixes choose a preview rule only under ``preview``; its full
    code always chooses it.
    """
    select, ignore = tuple(select), tuple(ignore)
    previews = frozenset() if preview else preview_codes()

    def chosen(code: str, patterns: tuple[str, ...]) -> bool:
        return any(p == "ALL" or code.startswith(p) for p in patterns)

    def selected(code: str) -> bool:
        return code in select or (code not in previews and chosen(code, select))

    return tuple(c for c in all_codes() if selected(c) and not chosen(c, ignore))


def load_rule(code: str) -> type[Rule]:
    """Import the rule class for ``code``; ``KeyError`` if there is none."""
    from qig_guard.rules.base import Rule

    module = importlib.import_module(f"{__name__}.{_modules()[code]}")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and not isinstance(value, types.GenericAlias)  # a type on Python 3.10
            and issubclass(value, Rule)
            and value.__dict__.get("code") == code
        ):
            return value
    raise KeyError(code)


def load_rules(codes: Iterable[str]) -> list[type[Rule]]:
    """Rule classes for ``codes``, in code order."""
    return [load_rule(code) for code in sorted(codes)]
