"""Trees a worker leaves for its exit to free (see engine.left_for_exit)."""

from __future__ import annotations

import gc
import weakref

from qig_guard.engine.isolation import run_isolated


class _Tree:
    """Stands for a file's tree (weakly referable)."""


def _left(budget: int | None, sizes: list[int]) -> list[bool]:
    """In a fresh worker: leave one tree per size, then which are still alive."""
    from qig_guard.engine import left_for_exit

    if budget is not None:
        left_for_exit.enable(budget)
        left_for_exit.enable(10 * budget)  # the first call decides
    alive = []
    for lines in sizes:
        tree = _Tree()
        alive.append(weakref.ref(tree))
        left_for_exit.leave((tree, [tree]), lines)  # a cycle: the collector may not free it
        del tree
    gc.collect()
    return [ref() is not None for ref in alive]


def test_a_worker_keeps_trees_while_its_budget_of_lines_lasts() -> None:
    sizes = [60, 30, 20, 10, 0]
    (kept,) = run_isolated([(100, sizes)], lambda task: _left(*task), lambda *_: [], 1)
    assert kept == [True, True, False, True, False]  # 60 + 30 + 10 fit; nothing kept of 0


def test_a_process_that_did_not_enable_it_frees_trees_at_once() -> None:
    (kept,) = run_isolated([(None, [10])], lambda task: _left(*task), lambda *_: [], 1)
    assert kept == [False]
