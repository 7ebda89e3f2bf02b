"""What a worker process leaves for its exit to free: the trees of the files it checked.

Freeing a file's libcst tree visits every node, which costs about a twentieth of its
parse. A worker forked by :mod:`multiprocessing` ends with ``os._exit``, which returns
all its memory at once and visits nothing; so a worker that :func:`enable` was called in
keeps what :func:`leave` is given while its peak memory stays under a cap, and frees the
rest as it goes. Elsewhere (the language server, a run in one process) :func:`leave`
does nothing.
"""

from __future__ import annotations

import gc
import sys

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX: nothing is left
    resource = None  # type: ignore[assignment]

_left: list[object] = []
_cap = 0  # bytes of peak resident memory under which trees are left; 0: none


def enable(cap: int) -> None:
    """Leave trees to this process's exit while its peak resident memory is under
    ``cap`` bytes (the first call decides)."""
    global _cap
    if not _cap:
        _cap = cap


def peak_memory() -> int:
    """This process's peak resident memory so far, in bytes (0 where unknown)."""
    if resource is None:  # pragma: no cover - not POSIX
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def leave(value: object) -> None:
    """Keep ``value``, a file's tree and what refers to it, until the process exits,
    while the cap allows. It is frozen (``gc.freeze``): the worker's collections between
    files need not traverse it. The file's cyclic garbage, if any, is frozen with it (a
    few hundred objects at most on pantheon-chat's files)."""
    if _cap and 0 < peak_memory() < _cap:
        _left.append(value)
        gc.freeze()
