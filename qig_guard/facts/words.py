"""Identifier matching by words, so that ``ocean_model`` matches ``ocean``.

Identifiers are split on underscores, dots and CamelCase boundaries and
lower-cased: ``self.OceanKernel`` is ``("self", "ocean", "kernel")``. A
configured name is split on underscores; it matches when its words occur
consecutively in the identifier's words, so ``ocean`` matches
``ocean_model`` and ``OceanKernel`` but not ``oceanography``. A word of a
configured name may be a glob: ``consolidat*`` matches ``consolidation``
and ``*basin*`` matches ``obs_basins``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from functools import lru_cache

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


@lru_cache(maxsize=16384)
def words(identifier: str) -> tuple[str, ...]:
    """Split ``identifier`` (possibly dotted) into lower-case words."""
    return tuple(match.group(0).lower() for match in _WORD.finditer(identifier))


@lru_cache(maxsize=1024)
def name_words(name: str) -> tuple[str, ...]:
    """Split a configured name (snake_case, globs allowed) into lower-case words."""
    return tuple(part for part in re.split(r"[_.\s]+", name.lower()) if part)


@lru_cache(maxsize=16384)
def matches(identifier: str, name: str) -> bool:
    """True when the words of ``name`` occur consecutively in ``identifier``."""
    wanted = name_words(name)
    if not wanted:
        return False
    have = words(identifier)
    span = len(wanted)
    return any(
        all(
            fnmatchcase(word, glob)
            for word, glob in zip(have[start : start + span], wanted, strict=True)
        )
        for start in range(len(have) - span + 1)
    )


def matches_any(identifier: str, names: Iterable[str]) -> bool:
    """True when ``identifier`` matches one of ``names``."""
    return any(matches(identifier, name) for name in names)


def text_pattern(names: Iterable[str]) -> str:
    """A regex fragment that finds candidate text for ``names`` (case-insensitive).

    It is deliberately looser than :func:`matches`: it selects files and lines
    worth parsing, and the rules decide with :func:`matches` afterwards.
    """
    parts = set()
    for name in names:
        globs = [
            "[A-Za-z0-9]*".join(re.escape(part) for part in word.strip("*").split("*"))
            for word in name_words(name)
            if word.strip("*")
        ]
        if globs:
            parts.add(r"_?".join(globs))
    return "(?i:" + "|".join(sorted(parts)) + ")" if parts else "(?!)"
