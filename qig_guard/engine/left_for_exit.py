"""What a worker process leaves for its exit to free: the trees of the files it checked.

Freeing a file's libcst tree visits every node, which costs about a twentieth of its
parse. A worker forked by :mod:`multiprocessing` ends with ``os._exit``, which returns
all its memory at once and visits nothing; so a worker that :func:`enable` was called in
keeps what :func:`leave` is given, up to a budget of parsed lines (about 600 bytes of
tree each), and frees the rest as it goes. Elsewhere (the language server, a run in
one process) :func:`leave` does nothing.
"""

from __future__ import annotations

import gc

_left: list[object] = []
_enabled = False
_budget = 0  # parsed lines whose trees may still be left


def enable(budget: int) -> None:
    """Leave the trees of up to ``budget`` parsed lines to this process's exit (the
    first call decides)."""
    global _enabled, _budget
    if not _enabled:
        _enabled, _budget = True, budget


def leave(value: object, lines: int) -> None:
    """Keep ``value``, the tree of ``lines`` parsed lines and what refers to it, until
    the process exits, while the budget lasts. It is frozen (``gc.freeze``): the
    worker's collections between files need not traverse it."""
    global _budget
    if 0 < lines <= _budget:
        _left.append(value)
        _budget -= lines
        gc.freeze()
