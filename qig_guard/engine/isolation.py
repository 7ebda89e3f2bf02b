"""Running per-file work in worker processes, so that one file never takes down the run.

A native crash (libcst's parser overflowing its stack), an exhausted memory or
a file that takes longer than :data:`FILE_TIME_LIMIT` costs only that file:
the worker that held it is replaced and the file's result says what happened.
Each worker holds one file at a time, so a failure is always attributed to the
right file. Workers are forked where the platform allows (cheap, and they
inherit what the parent already imported).
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import multiprocessing
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

FILE_TIME_LIMIT = 60.0

Task = TypeVar("Task")
Outcome = TypeVar("Outcome")


def _context() -> Any:
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()  # pragma: no cover - not POSIX


# Tracked objects a worker may leave behind before it looks for cyclic garbage.
COLLECT_AFTER = 100_000


def _serve(connection: Connection, work: Callable[[Any], Any]) -> None:
    """A worker's loop: one task in, one outcome out, until ``None`` arrives.

    The cyclic garbage collector does not run during a task: a parse allocates
    millions of nodes, which set off full collections that cost about a tenth of a
    check and find almost nothing (trees are freed by reference counting). It runs
    between tasks once enough objects have survived, and never over what the worker
    inherited from the parent (frozen), so memory stays bounded."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    faulthandler.disable()  # a crash is reported by the parent, without a traceback
    gc.freeze()
    gc.disable()
    while True:
        task = connection.recv()
        if task is None:
            return
        try:
            outcome = work(task)
        except Exception as error:  # reported by the parent as an internal error
            outcome = _Failure(f"{type(error).__name__}: {error}")
        connection.send(outcome)
        if gc.get_count()[0] > COLLECT_AFTER:
            gc.collect()


@dataclass
class _Failure:
    reason: str


@dataclass
class _Worker(Generic[Task]):
    process: Any
    connection: Connection
    index: int = -1  # the task it holds, or -1
    started: float = 0.0


def describe_exit(exitcode: int | None) -> str:
    """``killed by signal SIGSEGV`` or ``exited with status 3``."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def run_isolated(
    tasks: Sequence[Task],
    work: Callable[[Task], Outcome],
    failed: Callable[[Task, str, bool], Outcome],
    jobs: int,
    time_limit: float | None = None,
    size: Callable[[Task], int] | None = None,
) -> list[Outcome]:
    """``[work(task) for task in tasks]``, run in up to ``jobs`` worker processes.

    A task whose worker dies or runs past ``time_limit`` seconds gets
    ``failed(task, reason, False)`` instead, one whose work raised
    ``failed(task, reason, True)``; the other tasks are unaffected. Given ``size``, the
    largest tasks go first, so that no worker is left with a long one at the end.
    """
    limit = FILE_TIME_LIMIT if time_limit is None else time_limit
    context = _context()
    outcomes: dict[int, Outcome] = {}
    queue = list(range(len(tasks)))[::-1]  # popped from the end
    if size is not None:
        queue.sort(key=lambda index: size(tasks[index]))
    workers: list[_Worker[Task]] = []

    def start() -> _Worker[Task]:
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, work), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def dispatch(worker: _Worker[Task]) -> None:
        if queue:
            worker.index = queue.pop()
            worker.started = time.monotonic()
            worker.connection.send(tasks[worker.index])
        else:
            worker.index = -1

    def replace(worker: _Worker[Task], reason: str) -> None:
        outcomes[worker.index] = failed(tasks[worker.index], reason, False)
        worker.process.kill()
        worker.process.join()
        worker.connection.close()
        workers.remove(worker)
        if queue:
            fresh = start()
            workers.append(fresh)
            dispatch(fresh)

    try:
        for _ in range(min(jobs, len(tasks))):
            worker = start()
            workers.append(worker)
            dispatch(worker)
        while len(outcomes) < len(tasks):
            busy = [w for w in workers if w.index >= 0]
            now = time.monotonic()
            timeout = max(0.0, min(w.started + limit for w in busy) - now)
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout)
            for worker in list(busy):
                if worker.connection in ready:
                    try:
                        outcome = worker.connection.recv()
                    except (EOFError, OSError):
                        worker.process.join()
                        replace(worker, describe_exit(worker.process.exitcode))
                        continue
                    if isinstance(outcome, _Failure):
                        outcome = failed(tasks[worker.index], outcome.reason, True)
                    outcomes[worker.index] = outcome
                    dispatch(worker)
                elif worker.process.sentinel in ready:
                    worker.process.join()
                    replace(worker, describe_exit(worker.process.exitcode))
                elif time.monotonic() - worker.started >= limit:
                    replace(worker, f"took longer than the {limit:g} s time limit")
    finally:
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.connection.send(None)
        for worker in workers:
            worker.process.join(timeout=1)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()
    return [outcomes[index] for index in range(len(tasks))]
