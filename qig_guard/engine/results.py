"""What a run of the checker returns: its findings, the files behind them, and its counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qig_guard.config import Config
from qig_guard.engine.findings import Finding
from qig_guard.facts.project import EMPTY, ProjectFacts


@dataclass
class Stats:
    """What each stage did, for ``--statistics`` and the benchmark."""

    files: int = 0
    lines: int = 0
    cached_files: int = 0
    cached_lines: int = 0
    parsed_files: int = 0
    parsed_lines: int = 0
    # Seconds per rule code in the traversal of the files parsed (``--statistics``).
    rule_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a run returns: its findings, in report order, and what was checked."""

    findings: list[Finding] = field(default_factory=list)
    internal_error: bool = False
    stats: Stats = field(default_factory=Stats)
    # Displayed path -> the file it names and the configuration it was checked
    # with, for --fix, --diff, --add-noqa and baselines.
    paths: dict[str, Path] = field(default_factory=dict)
    configs: dict[str, Config] = field(default_factory=dict)
    # Folders named on the command line that hold no Python file to check.
    empty_folders: list[Path] = field(default_factory=list)
    # The index of every file of the run, which the rules query.
    project: ProjectFacts = EMPTY
