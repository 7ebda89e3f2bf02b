"""Checking editor buffers with the engine: configuration, findings, fixes, ``# noqa``.

Nothing here knows the protocol. A buffer is checked exactly as ``qig-guard
check`` checks the file it will be saved as: the nearest ``pyproject.toml``,
its excludes and per-file ignores, ``# noqa`` and the result cache; a basin
JSON file (one matching the basin globs) gets the basin validator's findings.
Every failure becomes a ``QIG000`` finding, never an exception.
"""

from __future__ import annotations

import io
import re
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

from qig_guard.basin.settings import BasinSettings, basin_settings
from qig_guard.basin.validate import is_basin_file, validate_basin_data
from qig_guard.config import Config, ConfigError, find_pyproject, load_pyproject
from qig_guard.engine import noqa, runner
from qig_guard.engine.cache import Cache
from qig_guard.engine.discovery import PYTHON_SUFFIXES, discover_files, is_excluded
from qig_guard.engine.findings import FILE_ERROR, Edit, Finding, Fix
from qig_guard.engine.fixer import applicable, apply_edits, fix_source
from qig_guard.engine.selection import codes_for
from qig_guard.facts.project import EMPTY, FactsCache, ProjectFacts, index_words
from qig_guard.rules import load_rules
from qig_guard.server.reparse import Reparser

LINE_BREAK = re.compile(r"\r\n|\r|\n")
BASIN_SUFFIX = ".json"


def split_lines(text: str) -> list[str]:
    """``text``'s lines without their breaks, as Python numbers them (the last may be empty)."""
    return LINE_BREAK.split(text)


@dataclass
class _Project:
    """One ``pyproject.toml``'s configuration (or the error it raised), with the
    cache and basin settings built from it."""

    mtime_ns: int
    config: Config | None
    error: ConfigError | None = None
    cache: Cache | None = None
    basin: BasinSettings | None = None
    facts: ProjectFacts | None = None
    facts_stamp: int = 0  # a hash of the files' paths, sizes and mtimes the facts are of
    facts_checked: float = 0.0  # when that stamp was last compared
    cache_digest: str = ""  # the facts digest ``cache`` is salted with


class Projects:
    """Configuration per file: its nearest ``pyproject.toml`` with a ``[tool.qig-guard]``
    table (the defaults without one), re-read when that file changes."""

    def __init__(self, *, use_cache: bool = True) -> None:
        self.use_cache = use_cache
        self._projects: dict[Path | None, _Project] = {}

    def _project(self, path: Path) -> _Project:
        pyproject = find_pyproject(path.parent)
        try:
            mtime = pyproject.stat().st_mtime_ns if pyproject else 0
        except OSError:
            mtime = -1
        known = self._projects.get(pyproject)
        if known is not None and known.mtime_ns == mtime:
            return known
        try:
            project = _Project(mtime, load_pyproject(pyproject) if pyproject else Config())
        except ConfigError as error:
            project = _Project(mtime, None, error)
        self._projects[pyproject] = project
        return project

    def config(self, path: Path) -> Config:
        """The configuration for ``path``; raises ``ConfigError`` for a bad one."""
        project = self._project(path)
        if project.config is None:
            assert project.error is not None
            raise project.error
        return project.config

    def cache(self, path: Path) -> Cache | None:
        """``check``'s result cache for ``path``'s project (None with ``use_cache`` off),
        salted as ``check`` salts it: the configuration and the project index."""
        project = self._project(path)
        facts = self.facts(path)
        config = project.config
        if not self.use_cache or config is None or config.cache_path is None:
            return None
        if project.cache is None or project.cache_digest != facts.digest:
            salt = f"{config.fingerprint()}\0{facts.digest}"
            project.cache = Cache(config.cache_path, salt)
            project.cache_digest = facts.digest
        return project.cache

    def facts(self, path: Path) -> ProjectFacts:
        """The project index over the Python files of ``path``'s project, as ``check .``
        builds it from the project root; rebuilt (from cached summaries) when a file's
        size or mtime changed, looked at most every :data:`FACTS_INTERVAL` seconds."""
        project = self._project(path)
        config = project.config
        if config is None:
            return EMPTY
        now = time.monotonic()
        if project.facts is not None and now - project.facts_checked < FACTS_INTERVAL:
            return project.facts
        project.facts_checked = now
        files = list(discover_files([config.root], config))
        stamp = hash(tuple(_file_stamp(file) for file in files))
        if project.facts is None or stamp != project.facts_stamp:
            summaries = FactsCache(
                config.cache_path if self.use_cache else None, index_words(config)
            )
            project.facts = ProjectFacts.merge(
                summaries.summaries(data for file in files if (data := _read(file)) is not None)
            )
            project.facts_stamp = stamp
        return project.facts

    def basin_settings(self, path: Path) -> BasinSettings:
        """The basin validator's settings for ``path``; raises ``ConfigError``."""
        project = self._project(path)
        if project.basin is None:
            project.basin = basin_settings(self.config(path))
        return project.basin


FACTS_INTERVAL = 2.0


def _file_stamp(path: Path) -> tuple[str, int, int]:
    try:
        info = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), info.st_size, info.st_mtime_ns)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def source_bytes(text: str) -> bytes:
    """A buffer's text as the bytes it will be saved as: in the encoding its PEP 263
    declaration names (UTF-8 without one, or when the text does not fit that encoding)."""
    utf8 = text.encode("utf-8")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(utf8).readline)
        return text.encode(encoding)
    except (SyntaxError, LookupError, UnicodeEncodeError):
        return utf8


def is_python(path: Path) -> bool:
    return path.suffix in PYTHON_SUFFIXES


def _file_error(path: Path, message: str) -> Finding:
    return Finding(str(path), 1, 1, FILE_ERROR, message)


def check_document(
    path: Path,
    text: str,
    projects: Projects,
    reparser: Reparser | None = None,
    *,
    python: bool | None = None,
) -> list[Finding]:
    """The findings for a buffer holding ``text`` that will be saved as ``path``:
    a Python file's rule findings, a basin file's validation findings, nothing for
    other or excluded files. ``python`` says whether the buffer is Python (default:
    by its suffix); ``reparser`` (one per buffer) reuses the unchanged statements of
    its previous parse."""
    try:
        if is_python(path) if python is None else python:
            config = projects.config(path)
            if is_excluded(path, config):
                return []
            data = source_bytes(text)
            cache, facts = projects.cache(path), projects.facts(path)
            return runner.check_file(path, data, config, cache, reparser, facts).findings
        if path.suffix == BASIN_SUFFIX:
            settings = projects.basin_settings(path)
            if not is_basin_file(path, settings):
                return []
            return validate_basin_data(str(path), text.encode("utf-8"), settings)
        return []
    except ConfigError as error:
        return [_file_error(path, f"configuration error, not checked: {error}")]
    except Exception as error:  # an editor must keep its server whatever the file holds
        return [
            _file_error(
                path,
                f"internal error, not checked ({type(error).__name__}: {error}); "
                "please report this",
            )
        ]


def fix_all(path: Path, text: str, findings: list[Finding], projects: Projects) -> str | None:
    """``text`` with every safe fix applied, re-parsed and re-checked round by round as
    ``check --fix`` does; None when there is nothing to fix or a round does not re-parse."""
    if not any(applicable(f, unsafe=False) for f in findings):
        return None  # (only Python findings have fixes)
    try:
        config = projects.config(path)
    except ConfigError:
        return None
    rules = load_rules(codes_for(path, config))
    outcome = fix_source(str(path), text, config, rules, False, projects.facts(path))
    if outcome.refused is not None or outcome.source == text:
        return None
    return outcome.source


def fix_parses(text: str, fix: Fix, reparser: Reparser | None = None) -> bool:
    """Whether ``text`` with ``fix`` applied still parses (a fix is offered only then);
    the buffer's ``reparser`` parses only the statements the fix changes."""
    import libcst as cst

    try:
        (reparser or cst.parse_module)(apply_edits(text, fix.edits))
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return False
    return True


def _comment_fits(text: str, line: int) -> bool:
    """Whether a comment can end physical line ``line``: the line is not continued
    with a backslash and does not end inside a string."""
    lines = split_lines(text)
    if line > len(lines) or lines[line - 1].rstrip().endswith("\\"):
        return False
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            start, end = token.start[0], token.end[0]
            if start > line:
                return True
            if start <= line < end and token.type != tokenize.NEWLINE:
                return False
    except (tokenize.TokenError, SyntaxError):
        return False
    return True


def noqa_edit(text: str, finding: Finding) -> Edit | None:
    """The edit that adds ``# noqa: CODE`` for ``finding`` to its line, or None where
    no suppression applies (file errors, basin files) or a comment cannot go."""
    if finding.code == FILE_ERROR or not _comment_fits(text, finding.line):
        return None
    line = split_lines(text)[finding.line - 1]
    updated = noqa.add_code(line, finding.code)
    if updated == line:
        return None
    return Edit(finding.line, 1, finding.line, len(line) + 1, updated)
