"""CPython ``ast`` trees that a worker parsed for the project index, kept for the check.

The index (see :mod:`qig_guard.facts.project`) parses the files that can matter to it,
and gating (see :mod:`qig_guard.engine.gating`) parses again every file some rule may
read: most indexed files are both. The runner sends a file's check to the worker that
indexed it (see :class:`~qig_guard.engine.isolation.WorkerPool`), which takes the tree
from here instead of parsing the file again. Only a worker that :func:`enable` was called
in keeps trees, up to a budget of source bytes; elsewhere :func:`keep` does nothing.
"""

from __future__ import annotations

import ast
import gc

_kept: dict[bytes, ast.Module] = {}
_enabled = False
_budget = 0  # source bytes left to keep trees of


def enable(budget: int) -> None:
    """Keep the trees of up to ``budget`` bytes of source in this process (the first
    call decides)."""
    global _enabled, _budget
    if not _enabled:
        _enabled, _budget = True, budget


def keep(data: bytes, tree: ast.Module) -> None:
    """Keep ``tree``, CPython's ``ast`` of ``data``, while the budget lasts. It is frozen
    (``gc.freeze``): the worker's collections between files need not traverse it."""
    global _budget
    if 0 < len(data) <= _budget:
        _kept[data] = tree
        _budget -= len(data)
        gc.freeze()


def take(data: bytes) -> ast.Module | None:
    """The tree kept for ``data``, if any (given once)."""
    return _kept.pop(data, None) if _kept else None
