"""Finding the Python files to check, honouring excludes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path, PurePath, PurePosixPath

from qig_guard.config import Config

SKIPPED_DIRECTORIES = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr", ".venv", "venv", ".tox", ".nox", "__pycache__",
        "build", "dist", ".eggs", "node_modules", "site-packages", ".mypy_cache",
        ".ruff_cache", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints", "_build",
    }
)  # fmt: skip
PYTHON_SUFFIXES = (".py", ".pyi")


def normalise(path: Path) -> Path:
    """``path`` made absolute with ``.`` and ``..`` resolved lexically (symbolic links
    kept), so ``a/../a/x.py`` and ``a/x.py`` match the same globs and configuration."""
    return Path(os.path.normpath(path.absolute()))


def relative_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, or absolute when outside it (string
    work on the normalised paths: a run asks this a few times per file)."""
    absolute = os.path.normpath(os.path.abspath(path))
    base = os.path.normpath(os.path.abspath(root))
    if absolute == base:
        return "."
    prefix = base if base.endswith(os.sep) else base + os.sep
    if absolute.startswith(prefix):
        return PurePath(absolute[len(prefix) :]).as_posix()
    return PurePath(absolute).as_posix()


def matches_glob(relative: str, pattern: str) -> bool:
    """gitignore-like: a pattern matches the path or any of its parent folders;
    a pattern without ``/`` also matches a single path component."""
    pattern = pattern.rstrip("/")
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    if "/" not in pattern:
        return any(fnmatchcase(part, pattern) for part in parts)
    pattern = pattern.removeprefix("./")
    return any(fnmatchcase(prefix, pattern) for prefix in prefixes)


def is_excluded(path: Path, config: Config) -> bool:
    relative = relative_posix(path, config.root)
    return any(matches_glob(relative, glob) for glob in (*config.exclude, *config.extend_exclude))


def _skip_directory(directory: Path) -> bool:
    name = directory.name
    return (
        name in SKIPPED_DIRECTORIES
        or name.endswith(".egg-info")
        or (directory / "pyvenv.cfg").is_file()
    )


ConfigFor = Callable[[Path], Config]


def discover_files(
    paths: Iterable[Path],
    config: Config | ConfigFor,
    empty_folders: list[Path] | None = None,
) -> Iterator[Path]:
    """Python files under ``paths``, normalised, sorted per directory, each once.

    ``config`` is one configuration or a function giving each path's own.
    Files named explicitly are checked whatever their suffix (or existence: a
    missing file is reported by the reader), unless excluded, so that
    pre-commit's file lists obey the project's ``exclude``. Folders that hold
    no Python file to check are appended to ``empty_folders``.
    """
    config_for: ConfigFor = config if callable(config) else (lambda _: config)
    seen: set[Path] = set()
    for given in paths:
        path = normalise(given)
        if path.is_dir():
            candidates: Iterable[Path] = _walk(path, config_for)
        else:
            candidates = [] if is_excluded(path, config_for(path)) else [path]
        found = False
        for candidate in candidates:
            found = True
            if candidate not in seen:
                seen.add(candidate)
                yield candidate
        if not found and path.is_dir() and empty_folders is not None:
            empty_folders.append(given)


def _walk(top: Path, config_for: ConfigFor) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(top):
        here = Path(directory)
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if not _skip_directory(here / name)
            and not is_excluded(here / name, config_for(here / name))
        )
        for name in sorted(files):
            if name.endswith(PYTHON_SUFFIXES):
                path = here / name
                if not is_excluded(path, config_for(path)):
                    yield path
