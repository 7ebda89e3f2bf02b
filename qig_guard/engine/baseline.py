"""Fingerprints of findings, and baselines of known findings (``--baseline``).

A finding's fingerprint hashes its code and the flagged source (the lines it
spans, each stripped), not its line number: code that moves up or down keeps
its fingerprint, code that changes gets a new one. A baseline is a sorted JSON
list of ``{path, code, fingerprint, message}`` entries, with paths relative to
the baseline file's folder, so it reads the same from any working directory
and reviews well in a diff. A run with ``--baseline`` reports only findings
beyond those recorded (matched by path, code and fingerprint, with counts).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qig_guard.engine.discovery import relative_posix
from qig_guard.engine.findings import Finding

FORMAT_VERSION = 1

# The text of the file a finding's path names, or None when it cannot be read.
SourceOf = Callable[[str], str | None]


class BaselineError(Exception):
    """The baseline file cannot be read or is not a baseline."""


def read_source(path: str) -> str | None:
    """The text of ``path`` (UTF-8, undecodable bytes replaced), or None."""
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def flagged_text(finding: Finding, source: str | None) -> str:
    """The source lines a finding spans, each stripped (the message if no source)."""
    if source is None:
        return finding.message
    lines = source.splitlines()
    end = finding.end_line if finding.end_line is not None else finding.line
    return "\n".join(line.strip() for line in lines[finding.line - 1 : max(end, finding.line)])


def fingerprint(finding: Finding, source: str | None) -> str:
    """A short stable hash of ``finding``'s code and flagged source."""
    text = f"{finding.code}\0{flagged_text(finding, source)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprints(findings: Sequence[Finding], source_of: SourceOf = read_source) -> list[str]:
    """The fingerprint of each finding, reading each file once."""
    sources: dict[str, str | None] = {}
    result = []
    for finding in findings:
        if finding.path not in sources:
            sources[finding.path] = source_of(finding.path)
        result.append(fingerprint(finding, sources[finding.path]))
    return result


@dataclass(frozen=True, order=True)
class Entry:
    """One recorded finding; ``path`` is relative to the baseline's folder."""

    path: str
    code: str
    fingerprint: str
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.path, self.code, self.fingerprint)


def entries(
    findings: Sequence[Finding], baseline: Path, source_of: SourceOf = read_source
) -> list[Entry]:
    """The baseline entries for ``findings`` (whose paths are relative to the cwd)."""
    folder = baseline.absolute().parent
    return [
        Entry(relative_posix(Path(finding.path), folder), finding.code, digest, finding.message)
        for finding, digest in zip(findings, fingerprints(findings, source_of), strict=True)
    ]


def load(baseline: Path) -> list[Entry]:
    """The entries of a baseline file; a missing file is an empty baseline."""
    try:
        document = json.loads(baseline.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        raise BaselineError(f"{baseline}: cannot read the baseline: {error}") from None
    try:
        if document["version"] != FORMAT_VERSION:
            raise BaselineError(f"{baseline}: unsupported baseline version {document['version']}")
        return [
            Entry(item["path"], item["code"], item["fingerprint"], item.get("message", ""))
            for item in document["findings"]
        ]
    except (KeyError, TypeError) as error:
        raise BaselineError(f"{baseline}: not a qig-guard baseline ({error!r})") from None


def dump(baseline: Path, recorded: Iterable[Entry]) -> int:
    """Write ``recorded`` to ``baseline`` as sorted, indented JSON; return the count."""
    ordered = sorted(recorded)
    document = {
        "version": FORMAT_VERSION,
        "tool": "qig-guard",
        "findings": [
            {"path": e.path, "code": e.code, "fingerprint": e.fingerprint, "message": e.message}
            for e in ordered
        ],
    }
    baseline.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return len(ordered)


@dataclass
class Filtered:
    """A run's findings against a baseline."""

    new: list[Finding]
    known: int
    # Recorded entries of checked files that no finding matched any more.
    stale: int


def apply(
    findings: Sequence[Finding],
    baseline: Path,
    recorded: Sequence[Entry],
    checked: Iterable[str],
    source_of: SourceOf = read_source,
) -> Filtered:
    """Drop the findings that ``recorded`` holds; ``checked`` are the displayed
    paths of the files this run read (for counting stale entries)."""
    remaining = Counter(entry.key for entry in recorded)
    new = []
    for finding, entry in zip(findings, entries(findings, baseline, source_of), strict=True):
        if remaining[entry.key] > 0:
            remaining[entry.key] -= 1
        else:
            new.append(finding)
    folder = baseline.absolute().parent
    checked_paths = {relative_posix(Path(path), folder) for path in checked}
    stale = sum(count for key, count in remaining.items() if key[0] in checked_paths and count > 0)
    return Filtered(new, len(findings) - len(new), stale)


def update(
    findings: Sequence[Finding],
    baseline: Path,
    recorded: Sequence[Entry],
    checked: Iterable[str],
    source_of: SourceOf = read_source,
) -> int:
    """Record the current findings of the checked files in ``baseline``, keeping the
    entries of files this run did not check (a pre-commit run sees only some)."""
    folder = baseline.absolute().parent
    current = entries(findings, baseline, source_of)
    covered = {relative_posix(Path(path), folder) for path in checked} | {e.path for e in current}
    kept = [entry for entry in recorded if entry.path not in covered]
    return dump(baseline, [*kept, *current])
