"""Trees a worker leaves for its exit to free (see engine.left_for_exit)."""

from __future__ import annotations

import gc
import weakref

from qig_guard.engine.isolation import run_isolated


class _Tree:
    """Stands for a file's tree (weakly referable)."""


def _left(cap: int | None, count: int) -> list[bool]:
    """In a fresh worker: leave ``count`` trees, then which are still alive."""
    from qig_guard.engine import left_for_exit

    if cap is not None:
        left_for_exit.enable(cap)
        left_for_exit.enable(1)  # the first call decides
    alive = []
    for _ in range(count):
        tree = _Tree()
        alive.append(weakref.ref(tree))
        left_for_exit.leave((tree, [tree]))  # a cycle: the collector may not free it
        del tree
    gc.collect()
    return [ref() is not None for ref in alive]


def _run(cap: int | None, count: int) -> list[bool]:
    (kept,) = run_isolated([(cap, count)], lambda task: _left(*task), lambda *_: [], 1)
    return kept


def test_a_worker_keeps_trees_while_its_peak_memory_is_under_the_cap() -> None:
    assert _run(1 << 40, 3) == [True, True, True]
    assert _run(1 << 20, 2) == [False, False]  # a worker's peak is far over 1 MiB


def test_a_process_that_did_not_enable_it_frees_trees_at_once() -> None:
    assert _run(None, 1) == [False]


def test_peak_memory_is_read_in_bytes() -> None:
    from qig_guard.engine.left_for_exit import peak_memory

    assert 5 << 20 < peak_memory() < 1 << 40  # this interpreter: megabytes, not kilobytes
