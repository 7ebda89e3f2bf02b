"""Running the checker over many files: per-file rule selection, cache, processes.

Only files whose results are not cached are read by a worker; only files in
which some rule's trigger matches are parsed. Output order is deterministic
(sorted by path, line, column) whatever the number of processes. Tests prove
that filtered, cached and parallel runs report exactly what a plain run does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from qig_guard.cache import Cache
from qig_guard.checker import FILE_ERROR, FileResult, check_source
from qig_guard.config import Config
from qig_guard.discovery import discover_files, matches_glob, relative_posix
from qig_guard.findings import Finding
from qig_guard.rules import select_codes

if TYPE_CHECKING:
    import libcst as cst


@dataclass
class Stats:
    """What each stage did, for ``--statistics`` and the benchmark."""

    files: int = 0
    lines: int = 0
    cached_files: int = 0
    cached_lines: int = 0
    parsed_files: int = 0
    parsed_lines: int = 0


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    internal_error: bool = False
    stats: Stats = field(default_factory=Stats)
    # Displayed path -> the file it names, for --fix and --diff.
    paths: dict[str, Path] = field(default_factory=dict)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def file_codes(relative: str, selected: tuple[str, ...], config: Config) -> tuple[str, ...]:
    """``selected`` minus the codes that ``per-file-ignores`` removes for this path."""
    ignored = {
        code
        for glob, codes in config.per_file_ignores
        if matches_glob(relative, glob)
        for code in codes
    }
    if not ignored:
        return selected
    return tuple(c for c in selected if not any(c.startswith(i) or i == "ALL" for i in ignored))


@lru_cache(maxsize=32)
def _rules_for(codes: tuple[str, ...]) -> list[type]:
    from qig_guard.rules import load_rules

    return load_rules(codes)


_WORKER_CONFIG: Config | None = None


def _init_worker(config: Config) -> None:
    global _WORKER_CONFIG
    _WORKER_CONFIG = config


def _check_one(task: tuple[str, bytes, tuple[str, ...]]) -> FileResult:
    display, data, codes = task
    assert _WORKER_CONFIG is not None
    return check_source(display, data, _WORKER_CONFIG, _rules_for(codes))


def run(
    paths: Sequence[Path],
    config: Config,
    *,
    jobs: int | None = None,
    use_cache: bool = True,
) -> RunResult:
    """Check every Python file under ``paths`` with the selected rules."""
    selected = select_codes(config.select, config.ignore)
    cache = Cache(config.root / config.cache_dir, config.fingerprint()) if use_cache else None
    cwd = Path.cwd()
    result = RunResult()
    pending: list[tuple[tuple[str, bytes, tuple[str, ...]], str | None, int]] = []
    for path in discover_files(paths, config):
        display = relative_posix(path, cwd)
        codes = file_codes(relative_posix(path, config.root), selected, config)
        if not codes:
            continue
        try:
            data = path.read_bytes()
        except OSError as error:
            message = f"cannot read: {error.strerror}"
            result.findings.append(Finding(display, 1, 1, FILE_ERROR, message))
            continue
        lines = data.count(b"\n")
        result.stats.files += 1
        result.stats.lines += lines
        result.paths[display] = path
        key = None
        if cache is not None:
            key = cache.key(data, codes)
            cached = cache.get(key, display)
            if cached is not None:
                result.stats.cached_files += 1
                result.stats.cached_lines += lines
                _collect(result, cached, selected)
                continue
        pending.append(((display, data, codes), key, lines))

    outcomes = _execute([task for task, _, _ in pending], config, jobs or default_jobs())
    for (_, key, lines), outcome in zip(pending, outcomes, strict=True):
        if outcome.parsed:
            result.stats.parsed_files += 1
            result.stats.parsed_lines += lines
        if cache is not None and key is not None:
            cache.put(key, outcome)
        _collect(result, outcome, selected)
    result.findings.sort(key=lambda finding: finding.sort_key)
    return result


def _collect(result: RunResult, outcome: FileResult, selected: tuple[str, ...]) -> None:
    result.internal_error |= outcome.internal_error
    result.findings.extend(
        f
        for f in outcome.findings
        if f.code in selected or (outcome.internal_error and f.code == FILE_ERROR)
    )


def _execute(
    tasks: Sequence[tuple[str, bytes, tuple[str, ...]]], config: Config, jobs: int
) -> Iterable[FileResult]:
    if jobs <= 1 or len(tasks) < 4:
        _init_worker(config)
        return [_check_one(task) for task in tasks]
    chunk = max(1, min(16, len(tasks) // (jobs * 8)))
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)), initializer=_init_worker, initargs=(config,)
    ) as pool:
        return list(pool.map(_check_one, tasks, chunksize=chunk))


def check_file(
    path: Path,
    data: bytes,
    config: Config,
    cache: Cache | None = None,
    parse: Callable[[str], cst.Module] | None = None,
) -> RunResult:
    """Check ``data`` as the contents of ``path`` (an editor's unsaved buffer, say)
    exactly as :func:`run` checks that file: its per-file rules and the cache.
    Exclusion is the caller's decision (see ``discovery.is_excluded``); ``parse``
    is passed to :func:`~qig_guard.checker.check_source`."""
    result = RunResult()
    selected = select_codes(config.select, config.ignore)
    codes = file_codes(relative_posix(path, config.root), selected, config)
    if not codes:
        return result
    display = relative_posix(path, Path.cwd())
    key = cache.key(data, codes) if cache is not None else None
    outcome = cache.get(key, display) if cache is not None and key is not None else None
    if outcome is None:
        outcome = check_source(display, data, config, _rules_for(codes), parse)
        if cache is not None and key is not None:
            cache.put(key, outcome)
    result.paths[display] = path
    _collect(result, outcome, selected)
    result.findings.sort(key=lambda finding: finding.sort_key)
    return result
