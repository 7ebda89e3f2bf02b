"""Running per-file work in worker processes, so that one file never takes down the run.

A native crash (libcst's parser overflowing its stack), an exhausted memory or
a file that takes longer than :data:`FILE_TIME_LIMIT` costs only that file:
the worker that held it is replaced and the file's result says what happened.
Each worker holds one file at a time, so a failure is always attributed to the
right file. Workers are forked where the platform allows (cheap, and they
inherit what the parent already imported).

A :class:`WorkerPool` keeps its workers from one batch of tasks to the next (the runner
indexes the project, then checks its files) and sends a task, where it can, to the worker
that ran a task of the same ``key`` before: that worker may still hold what it computed
for it (see :mod:`qig_guard.facts.kept_trees`).
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import multiprocessing
import signal
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
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
    """A worker's loop: one task in, one outcome out, until ``None`` arrives; a
    :class:`_Work` message changes what it does with the tasks that follow.

    The cyclic garbage collector does not run during a task: a parse allocates
    millions of nodes, which set off full collections that cost about a tenth of a
    check and find almost nothing (trees are freed by reference counting). It runs
    between tasks once enough objects have survived, and never over what the worker
    inherited from the parent or kept from an earlier batch (frozen), so memory stays
    bounded."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    faulthandler.disable()  # a crash is reported by the parent, without a traceback
    gc.freeze()
    gc.disable()
    while True:
        task = connection.recv()
        if task is None:
            return
        if isinstance(task, _Work):
            work = task.work
            gc.freeze()
            continue
        try:
            outcome = work(task)
        except Exception as error:  # reported by the parent as an internal error
            outcome = _Failure(f"{type(error).__name__}: {error}")
        connection.send(outcome)
        if gc.get_count()[0] > COLLECT_AFTER:
            gc.collect()


@dataclass
class _Work:
    """What a live worker does with the tasks that follow."""

    work: Callable[[Any], Any]


@dataclass
class _Failure:
    reason: str


@dataclass
class _Worker(Generic[Task]):
    process: Any
    connection: Connection
    slot: int  # kept by its replacement
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
    """``[work(task) for task in tasks]``, run in up to ``jobs`` worker processes (see
    :meth:`WorkerPool.run`)."""
    with WorkerPool(jobs) as pool:
        return pool.run(tasks, work, failed, time_limit, size)


class WorkerPool:
    """Up to ``jobs`` worker processes, started when a batch needs them and kept until
    :meth:`close` (or the end of a ``with`` block)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._context = _context()
        self._workers: list[_Worker[Any]] = []
        self._work: Callable[[Any], Any] | None = None  # what the live workers do
        self._placed: dict[Hashable, int] = {}  # per key, the slot of the last worker

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def started(self) -> bool:
        """Whether workers are alive (a later batch reuses them instead of forking)."""
        return bool(self._workers)

    def run(
        self,
        tasks: Sequence[Task],
        work: Callable[[Task], Outcome],
        failed: Callable[[Task, str, bool], Outcome],
        time_limit: float | None = None,
        size: Callable[[Task], int] | None = None,
        key: Callable[[Task], Hashable] | None = None,
    ) -> list[Outcome]:
        """``[work(task) for task in tasks]``, in the workers.

        A task whose worker dies or runs past ``time_limit`` seconds gets
        ``failed(task, reason, False)`` instead, one whose work raised
        ``failed(task, reason, True)``; the other tasks are unaffected. Given ``size``,
        the largest tasks go first, so that no worker is left with a long one at the end.
        Given ``key``, a task goes first to the worker that last ran a task of its key
        (in this batch or an earlier one), which may hold what it computed then."""
        try:
            return self._run(tasks, work, failed, time_limit, size, key)
        except BaseException:
            self.close()
            raise

    def _run(
        self,
        tasks: Sequence[Task],
        work: Callable[[Task], Outcome],
        failed: Callable[[Task, str, bool], Outcome],
        time_limit: float | None,
        size: Callable[[Task], int] | None,
        key: Callable[[Task], Hashable] | None,
    ) -> list[Outcome]:
        if not tasks:
            return []
        limit = FILE_TIME_LIMIT if time_limit is None else time_limit
        outcomes: dict[int, Outcome] = {}
        order = list(range(len(tasks)))[::-1]  # popped from the end
        if size is not None:
            order.sort(key=lambda index: size(tasks[index]))
        queues: dict[int | None, list[int]] = {}  # per slot (None: any), popped from the end
        for index in order:
            slot = self._placed.get(key(tasks[index])) if key is not None else None
            queues.setdefault(slot, []).append(index)
        self._switch(work)
        while len(self._workers) < min(self.jobs, len(tasks)):
            self._workers.append(self._start(len(self._workers), work))
        workers = self._workers

        def dispatch(worker: _Worker[Task]) -> None:
            own, anyone = queues.get(worker.slot), queues.get(None)
            queue = own or anyone or max(queues.values(), key=len)
            if queue:
                worker.index = queue.pop()
                worker.started = time.monotonic()
                worker.connection.send(tasks[worker.index])
            else:
                worker.index = -1

        def finish(worker: _Worker[Task], outcome: Outcome) -> None:
            outcomes[worker.index] = outcome
            if key is not None:
                self._placed[key(tasks[worker.index])] = worker.slot

        def replace(worker: _Worker[Task], reason: str) -> None:
            finish(worker, failed(tasks[worker.index], reason, False))
            self._stop(worker, kill=True)
            fresh = self._start(worker.slot, work)
            workers[workers.index(worker)] = fresh
            dispatch(fresh)

        for worker in workers:
            dispatch(worker)
        while len(outcomes) < len(tasks):
            busy = [w for w in workers if w.index >= 0]
            now = time.monotonic()
            timeout = max(0.0, min(w.started + limit for w in busy) - now)
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout)
            for worker in busy:
                if worker.connection in ready:
                    try:
                        outcome = worker.connection.recv()
                    except (EOFError, OSError):
                        worker.process.join()
                        replace(worker, describe_exit(worker.process.exitcode))
                        continue
                    if isinstance(outcome, _Failure):
                        outcome = failed(tasks[worker.index], outcome.reason, True)
                    finish(worker, outcome)
                    dispatch(worker)
                elif worker.process.sentinel in ready:
                    worker.process.join()
                    replace(worker, describe_exit(worker.process.exitcode))
                elif time.monotonic() - worker.started >= limit:
                    replace(worker, f"took longer than the {limit:g} s time limit")
        return [outcomes[index] for index in range(len(tasks))]

    def _start(self, slot: int, work: Callable[[Any], Any]) -> _Worker[Any]:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, work), daemon=True)
        process.start()
        child.close()
        self._work = work
        return _Worker(process, parent, slot)

    def _switch(self, work: Callable[[Any], Any]) -> None:
        """Have the live workers do ``work``: sent to them, or, where it cannot be
        pickled, by new workers that inherit it. A worker that died since the last batch
        (killed while idle) is replaced."""
        if not self._workers:
            return
        message = None
        if work is not self._work:
            try:
                message = bytes(ForkingPickler.dumps(_Work(work)))
            except Exception:  # a closure, say: fork new workers instead
                self.close()
                return
        for index, worker in enumerate(self._workers):
            try:
                if not worker.process.is_alive():
                    raise BrokenPipeError
                if message is not None:
                    worker.connection.send_bytes(message)
            except OSError:
                self._stop(worker, kill=True)
                self._workers[index] = self._start(worker.slot, work)
        self._work = work

    def _stop(self, worker: _Worker[Any], kill: bool = False) -> None:
        if kill:
            worker.process.kill()
        worker.process.join(timeout=1)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()

    def close(self) -> None:
        """Stop the workers (each finishes the task it holds, if any, within a second)."""
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.connection.send(None)
        for worker in self._workers:
            self._stop(worker)
        self._workers = []
        self._work = None
