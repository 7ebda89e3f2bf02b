"""Running the checker over many files: per-file rule selection, cache, processes.

Only files whose results are not cached are read by a worker; only files in
which some rule's trigger matches are parsed. Output order is deterministic
(:func:`~qig_guard.engine.findings.ordered`, applied here once to what a run
returns) whatever the number of processes and whatever the cache held. Files are
always checked in worker processes (``-j 1`` is one worker), so a file that
crashes or hangs the parser costs only itself (see ``isolation``). The same workers
first index the project (a cold run of many files), and each file's check goes to the
worker that indexed it, which reuses the ``ast`` it parsed (see ``facts.kept_trees``).
Tests prove that filtered, cached and parallel runs report exactly what a plain run does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from qig_guard.config import Config, ConfigResolver
from qig_guard.engine import left_for_exit
from qig_guard.engine.cache import Cache
from qig_guard.engine.checker import FileResult, check_source
from qig_guard.engine.discovery import discover_files, relative_posix
from qig_guard.engine.findings import FILE_ERROR, Finding, ordered
from qig_guard.engine.isolation import WorkerPool
from qig_guard.engine.parsing import keep_deep_stack_thread
from qig_guard.engine.results import RunResult
from qig_guard.engine.selection import file_codes, selected_codes
from qig_guard.engine.source import SourceError, read_regular
from qig_guard.facts import kept_trees
from qig_guard.facts.project import FactsCache, ProjectFacts, Summary, index_words

if TYPE_CHECKING:
    import libcst as cst


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=32)
def _rules_for(codes: tuple[str, ...]) -> list[type]:
    from qig_guard.rules import load_rules

    return load_rules(codes)


# A worker leaves the libcst trees it built to its exit to free while its peak memory
# stays under this (a worker checks in about 150 MiB; the goal is at most 200 MB).
LEFT_MEMORY = 175 * 1024 * 1024

# A file to check: its displayed path, bytes, rule codes and configuration's index.
Task = tuple[str, bytes, tuple[str, ...], int]


def _check_one(configs: Sequence[Config], project: ProjectFacts, task: Task) -> FileResult:
    """Check one file in a worker process."""
    keep_deep_stack_thread()
    left_for_exit.enable(LEFT_MEMORY)
    display, data, codes, config_index = task
    return check_source(display, data, configs[config_index], _rules_for(codes), project)


def _task_size(task: Task) -> int:
    return len(task[1])


def _task_data(task: Task) -> bytes:
    return task[1]


def _same(data: bytes) -> bytes:
    return data


# Source bytes per worker whose ``ast`` the index keeps for the check (about 25 bytes of
# tree per byte of source: some 50 MiB).
TREE_BUDGET = 2_000_000


def _summarise(summary: Callable[[bytes], Summary], data: bytes) -> Summary:
    """Index one file in a worker process, which keeps the tree for the file's check."""
    kept_trees.enable(TREE_BUDGET)
    return summary(data)


def _failed(task: Task, reason: str, internal: bool) -> FileResult:
    display = task[0]
    if internal:
        message = f"internal error ({reason}); please report this"
    else:
        message = f"the checker's worker process {reason} on this file; not checked"
    return FileResult([Finding(display, 1, 1, FILE_ERROR, message)], internal_error=internal)


@dataclass
class _Scope:
    """What the files of one configuration share: its rules, cache and worker index."""

    config: Config
    index: int
    selected: tuple[str, ...]
    cache: Cache | None


def run(
    paths: Sequence[Path],
    config: Config | ConfigResolver,
    *,
    jobs: int | None = None,
    use_cache: bool = True,
) -> RunResult:
    """Check every Python file under ``paths`` with the selected rules, each file
    under ``config`` or, given a :class:`ConfigResolver`, under its own configuration."""
    config_for = config.for_path if isinstance(config, ConfigResolver) else (lambda _: config)
    cwd = Path.cwd()
    result = RunResult()
    scopes: dict[int, _Scope] = {}  # by id() of a configuration, which the scope keeps alive
    files: list[tuple[str, Path, bytes, tuple[str, ...], _Scope]] = []
    for path in discover_files(paths, config_for, result.empty_folders):
        display = relative_posix(path, cwd)
        file_config = config_for(path)
        scope = scopes.get(id(file_config))
        if scope is None:
            selected = selected_codes(file_config)
            scope = _Scope(file_config, len(scopes), selected, None)
            scopes[id(file_config)] = scope
        codes = file_codes(relative_posix(path, file_config.root), scope.selected, file_config)
        if not codes:
            continue
        try:
            data = read_regular(path, file_config.max_file_size)
        except SourceError as error:
            result.findings.append(Finding(display, 1, 1, FILE_ERROR, str(error)))
            continue
        except OSError as error:
            message = f"cannot read: {error.strerror or error}"
            if path.is_symlink() and not path.exists():
                message = f"cannot read: dangling symbolic link to {os.readlink(path)}"
            result.findings.append(Finding(display, 1, 1, FILE_ERROR, message))
            continue
        files.append((display, path, data, codes, scope))

    with WorkerPool(jobs or default_jobs()) as pool:
        _check_all(files, scopes, result, use_cache, pool)
    result.findings = ordered(result.findings)
    return result


def _check_all(
    files: Sequence[tuple[str, Path, bytes, tuple[str, ...], _Scope]],
    scopes: dict[int, _Scope],
    result: RunResult,
    use_cache: bool,
    pool: WorkerPool,
) -> None:
    """Index ``files`` and check those whose results are not cached, with ``pool``'s
    workers: a file's check goes to the worker that indexed it."""
    result.project = _index(files, [scope.config for scope in scopes.values()], use_cache, pool)
    caches: dict[tuple[Path, str], Cache] = {}
    for scope in scopes.values():
        if use_cache and scope.config.cache_path is not None:
            where = (
                scope.config.cache_path,
                f"{scope.config.fingerprint()}\0{result.project.digest}",
            )
            scope.cache = caches.setdefault(where, Cache(*where))
    pending: list[tuple[Task, _Scope, str | None, int]] = []
    for display, path, data, codes, scope in files:
        lines = data.count(b"\n")
        result.stats.files += 1
        result.stats.lines += lines
        result.paths[display] = path
        result.configs[display] = scope.config
        key = None
        if scope.cache is not None:
            key = scope.cache.key(data, codes)
            cached = scope.cache.get(key, display)
            if cached is not None:
                result.stats.cached_files += 1
                result.stats.cached_lines += lines
                _collect(result, cached, scope.selected)
                continue
        pending.append(((display, data, codes, scope.index), scope, key, lines))

    configs = [scope.config for scope in scopes.values()]
    tasks = [item[0] for item in pending]
    outcomes = _execute(tasks, configs, result.project, pool)
    for (_, scope, key, _lines), outcome in zip(pending, outcomes, strict=True):
        if outcome.parsed:
            result.stats.parsed_files += 1
            result.stats.parsed_lines += outcome.parsed_lines
        for code, seconds in outcome.rule_seconds.items():
            result.stats.rule_seconds[code] = result.stats.rule_seconds.get(code, 0.0) + seconds
        if scope.cache is not None and key is not None:
            scope.cache.put(key, outcome)
        _collect(result, outcome, scope.selected)


def _collect(result: RunResult, outcome: FileResult, selected: tuple[str, ...]) -> None:
    result.internal_error |= outcome.internal_error
    result.findings.extend(
        f
        for f in outcome.findings
        if f.code in selected or (outcome.internal_error and f.code == FILE_ERROR)
    )


# From this many files on, summarising them is worth starting worker processes.
_MANY_SOURCES = 64


def _index(
    files: Sequence[tuple[str, Path, bytes, tuple[str, ...], _Scope]],
    configs: Sequence[Config],
    use_cache: bool,
    pool: WorkerPool,
) -> ProjectFacts:
    """The project index over every file of the run (summaries cached beside the results
    of the first configuration that has a cache)."""
    where = next((c.cache_path for c in configs if c.cache_path is not None), None)
    extra_words = tuple(sorted({w for c in configs for w in index_words(c)}))
    facts = FactsCache(where if use_cache else None, extra_words)
    sources = [data for _, _, data, _, _ in files]
    return ProjectFacts.merge(facts.summaries(sources, partial(_in_workers, pool=pool)))


def _in_workers(
    summary: Callable[[bytes], Summary], sources: list[bytes], pool: WorkerPool
) -> list[Summary]:
    """``[summary(s) for s in sources]``, in worker processes when there are many (a cold
    run); a file whose worker fails has no facts, as one that does not parse."""
    if pool.jobs < 2 or len(sources) < _MANY_SOURCES:
        return [summary(data) for data in sources]
    return pool.run(
        sources,
        partial(_summarise, summary),
        lambda _source, _reason, _internal: (),
        size=len,
        key=_same,
    )


def _execute(
    tasks: Sequence[Task], configs: list[Config], project: ProjectFacts, pool: WorkerPool
) -> Iterable[FileResult]:
    """Check ``tasks`` in worker processes: a crash or hang costs only its file."""
    if not tasks:
        return []
    if not pool.started:  # workers forked from here inherit libcst and the rules
        import libcst  # noqa: F401

        for codes in {task[2] for task in tasks}:
            _rules_for(codes)
    work = partial(_check_one, configs, project)
    return pool.run(tasks, work, _failed, size=_task_size, key=_task_data)


def check_file(
    path: Path,
    data: bytes,
    config: Config,
    cache: Cache | None = None,
    parse_module: Callable[[str], cst.Module] | None = None,
    project: ProjectFacts | None = None,
) -> RunResult:
    """Check ``data`` as the contents of ``path`` (an editor's unsaved buffer, say)
    exactly as :func:`run` checks that file: its per-file rules and the cache (whose
    salt must include ``project``'s digest). Exclusion is the caller's decision (see
    ``discovery.is_excluded``); ``project`` is the workspace's index (by default the
    buffer's own), and ``parse_module`` is passed to
    :func:`~qig_guard.engine.checker.check_source`."""
    result = RunResult()
    selected = selected_codes(config)
    codes = file_codes(relative_posix(path, config.root), selected, config)
    if not codes:
        return result
    display = relative_posix(path, Path.cwd())
    key = cache.key(data, codes) if cache is not None else None
    outcome = cache.get(key, display) if cache is not None and key is not None else None
    if outcome is None:
        outcome = check_source(
            display, data, config, _rules_for(codes), project, parse_module=parse_module
        )
        if cache is not None and key is not None:
            cache.put(key, outcome)
    result.paths[display] = path
    _collect(result, outcome, selected)
    result.findings = ordered(result.findings)
    return result
