"""Strict JSON reading: size cap, UTF-8 only, no duplicate keys, bounded nesting.

Python's :mod:`json` accepts ``NaN``/``Infinity`` tokens, keeps the last of two
duplicate keys and recurses without a bound; basin files need none of that.
Non-finite tokens are parsed (as floats) so the validator can report where
each one is; :func:`locate` maps a JSON path back to its line and column.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from qig_guard.engine.source import NotRegularFile, TooLarge, read_regular

MAX_DEPTH = 64
JsonPath = tuple[str | int, ...]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:Infinity|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|true|false|null|NaN")


class JsonReadError(ValueError):
    """The file is not strict JSON; ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class JsonDocument:
    """A parsed file: its text, its value and its size in bytes."""

    text: str
    value: Any
    size: int


class _DuplicateKeyError(Exception):
    pass


def _no_duplicates(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _check_depth(text: str) -> None:
    blanked = _STRING.sub('""', text)
    depth = 0
    for match in _BRACKET.finditer(blanked):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise JsonReadError(f"nested deeper than {MAX_DEPTH} levels")


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path``; files over ``max_bytes`` are refused unread."""
    try:
        data = read_regular(path, max_bytes)
    except TooLarge:
        raise JsonReadError(f"larger than {max_bytes} bytes: not parsed") from None
    except NotRegularFile as error:
        raise JsonReadError(str(error).replace("; not checked", ": not read")) from None
    except OSError as error:
        raise JsonReadError(f"cannot read: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise JsonReadError(f"larger than {max_bytes} bytes: not parsed")
    return data


def read_json(path: Path, max_bytes: int) -> JsonDocument:
    """Parse ``path`` strictly; files over ``max_bytes`` are refused unread."""
    return parse_json(read_bytes(path, max_bytes))


def parse_json(data: bytes) -> JsonDocument:
    """Parse ``data`` strictly (see the module docstring)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise JsonReadError(f"not UTF-8: byte 0x{data[error.start]:02x}", line, column) from None
    _check_depth(text)
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as error:
        ends_early = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated")
        early = " (the file ends early: truncated?)" if ends_early else ""
        raise JsonReadError(
            f"not valid JSON: {error.msg}{early}", error.lineno, error.colno
        ) from None
    except _DuplicateKeyError:
        path, offset = _first_duplicate(text)
        raise JsonReadError(
            f"duplicate key {path[-1]!r} in {json_path(path[:-1])}", *position(text, offset)
        ) from None
    except (ValueError, RecursionError) as error:  # e.g. an integer with too many digits
        raise JsonReadError(f"not valid JSON: {error}") from None
    return JsonDocument(text=text, value=value, size=len(data))


def json_path(path: JsonPath) -> str:
    """``('basin', 12)`` as ``$.basin[12]``."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part.isidentifier():
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(part)}]")
    return "".join(parts)


class _Indexer:
    """Offsets of every value (and of every duplicate key) in valid JSON text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offsets: dict[JsonPath, int] = {}
        self.duplicates: list[tuple[JsonPath, int]] = []

    def skip(self, index: int) -> int:
        match = _WS.match(self.text, index)
        assert match is not None
        return match.end()

    def value(self, index: int, path: JsonPath) -> int:
        text = self.text
        index = self.skip(index)
        self.offsets.setdefault(path, index)
        char = text[index]
        if char == '"':
            return int(scanstring(text, index + 1)[1])
        if char not in "[{":
            match = _SCALAR.match(text, index)
            if match is None:
                raise ValueError(f"unexpected {char!r}")
            return match.end()
        closing = "]" if char == "[" else "}"
        index = self.skip(index + 1)
        if text[index] == closing:
            return index + 1
        seen: set[str] = set()
        item = 0
        while True:
            index = self.skip(index)
            if char == "{":
                key, after = scanstring(text, index + 1)
                if key in seen:
                    self.duplicates.append(((*path, key), index))
                seen.add(key)
                index = self.value(self.skip(after) + 1, (*path, key))
            else:
                index = self.value(index, (*path, item))
                item += 1
            index = self.skip(index)
            if text[index] == closing:
                return index + 1
            index += 1


def _index(text: str) -> _Indexer:
    indexer = _Indexer(text)
    with contextlib.suppress(ValueError, IndexError):  # keep what was indexed
        indexer.value(0, ())
    return indexer


def _first_duplicate(text: str) -> tuple[JsonPath, int]:
    duplicates = _index(text).duplicates
    return duplicates[0] if duplicates else (("?",), 0)


class Locator:
    """Line and column of a JSON path's value in a document's text (built on first use)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offsets: dict[JsonPath, int] | None = None

    def __call__(self, path: JsonPath) -> tuple[int, int]:
        if self._offsets is None:
            self._offsets = _index(self._text).offsets
        while path not in self._offsets and path:
            path = path[:-1]
        return position(self._text, self._offsets.get(path, 0))
