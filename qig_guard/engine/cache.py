"""A content-addressed result cache in ``.qig-guard-cache/``.

An entry's key hashes the file's bytes, the tool version, the configuration
fingerprint and the rule codes, and an entry records the other files its rules read
(a constant's module, with their modification times and sizes), so any change that
could change a result misses. Entries are written to a temporary file and renamed into place, so
concurrent runs never see a partial entry. Paths are not part of an entry:
the same content under two names shares it. Each entry carries a checksum of
its key and content and is validated field by field when read: a damaged or
foreign entry is a miss, so it is recomputed and never hides findings.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from qig_guard import __version__
from qig_guard.engine.checker import FileResult, file_stamps
from qig_guard.engine.findings import Finding

FORMAT = "3"
PACKAGE = Path(__file__).parent.parent
# The folders whose code decides a file's findings (the package root holds config.py).
CHECKER_CODE = ("", "engine", "facts", "rules")


def code_fingerprint() -> str:
    """Identifies this installation's checker code (names, sizes, mtimes), so an
    edited or reinstalled qig-guard never reuses results of the old code."""
    digest = hashlib.sha256(__version__.encode())
    for folder in CHECKER_CODE:
        for entry in sorted(os.scandir(PACKAGE / folder), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                info = entry.stat()
                name = f"{folder}/{entry.name}"
                digest.update(f"{name}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()


class Cache:
    """Read and write cached :class:`FileResult` values under ``directory``."""

    def __init__(self, directory: Path, config_fingerprint: str) -> None:
        self.directory = directory / f"v{FORMAT}"
        self._salt = f"{code_fingerprint()}\0{config_fingerprint}\0".encode()
        self._ready = False

    def key(self, data: bytes, codes: tuple[str, ...]) -> str:
        digest = hashlib.sha256(self._salt)
        digest.update(",".join(codes).encode())
        digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str, path: str) -> FileResult | None:
        """The cached result, or None when absent, damaged or of the wrong shape
        (then the file is checked again: a bad entry never hides findings)."""
        try:
            with open(self._path(key), encoding="utf-8") as handle:
                entry = json.load(handle)
            if not isinstance(entry, dict) or entry.get("checksum") != _checksum(
                key, entry.get("result")
            ):
                return None
            result = entry["result"]
            if not _valid_result(result):
                return None
            read = {name: (mtime, size) for name, mtime, size in result["read"]}
            if file_stamps(read) != read:
                return None  # a file the rules read has changed (or gone) since
            findings = [Finding.from_dict({**item, "path": path}) for item in result["findings"]]
            return FileResult(findings, internal_error=False, read_files=read)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: str, result: FileResult) -> None:
        if result.internal_error:
            return  # let a crash be reproduced, not remembered
        target = self._path(key)
        stored = {
            "findings": [{**finding.to_dict(), "path": ""} for finding in result.findings],
            "read": [[name, *stamp] for name, stamp in sorted(result.read_files.items())],
        }
        entry = {"checksum": _checksum(key, stored), "result": stored}
        try:
            if not self._ready:
                self.directory.mkdir(parents=True, exist_ok=True)
                (self.directory.parent / ".gitignore").write_text("*\n", encoding="utf-8")
                (self.directory.parent / "CACHEDIR.TAG").write_text(
                    "Signature: 8a477f597d28d172789f06886806bc55\n"
                    "# This directory is a cache of qig-guard results.\n",
                    encoding="utf-8",
                )
                self._ready = True
            target.parent.mkdir(exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(entry, stream, separators=(",", ":"))
            os.replace(temporary, target)
        except OSError:
            pass  # a read-only or full disk makes the cache a no-op, never an error


def _checksum(key: str, result: object) -> str:
    """Guards an entry against damage: its key and its canonical JSON, hashed."""
    text = json.dumps(result, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{key}\0{text}".encode()).hexdigest()


def _optional_int(value: object) -> bool:
    return value is None or (type(value) is int)


def _valid_edit(edit: object) -> bool:
    return (
        isinstance(edit, dict)
        and set(edit) == {"line", "column", "end_line", "end_column", "content"}
        and all(type(edit[name]) is int for name in ("line", "column", "end_line", "end_column"))
        and isinstance(edit["content"], str)
    )


def _valid_fix(fix: object) -> bool:
    return fix is None or (
        isinstance(fix, dict)
        and isinstance(fix.get("description"), str)
        and isinstance(fix.get("safe"), bool)
        and isinstance(fix.get("edits"), list)
        and all(_valid_edit(edit) for edit in fix["edits"])
    )


def _valid_finding(item: object) -> bool:
    return (
        isinstance(item, dict)
        and type(item.get("line")) is int
        and type(item.get("column")) is int
        and _optional_int(item.get("end_line"))
        and _optional_int(item.get("end_column"))
        and isinstance(item.get("code"), str)
        and isinstance(item.get("message"), str)
        and _valid_fix(item.get("fix"))
    )


def _valid_read(item: object) -> bool:
    return (
        isinstance(item, list)
        and len(item) == 3
        and isinstance(item[0], str)
        and type(item[1]) is int
        and type(item[2]) is int
    )


def _valid_result(result: object) -> bool:
    """The shape :meth:`Cache.put` writes: ``{"findings": [finding, ...], "read":
    [[path, mtime_ns, size], ...]}``."""
    return (
        isinstance(result, dict)
        and isinstance(result.get("findings"), list)
        and all(_valid_finding(item) for item in result["findings"])
        and isinstance(result.get("read"), list)
        and all(_valid_read(item) for item in result["read"])
    )
