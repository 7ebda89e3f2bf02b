"""Reading Python source bytes: regular files only, size limit and PEP 263 decoding."""

from __future__ import annotations

import io
import os
import stat
import tokenize
from pathlib import Path


class SourceError(Exception):
    """The file cannot be checked; the message says why, for a QIG000 finding."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


def decode(data: bytes, max_size: int) -> tuple[str, str]:
    """Decode ``data`` per PEP 263; return ``(text, encoding)`` or raise SourceError."""
    if len(data) > max_size:
        raise SourceError(
            f"file is {len(data):,} bytes, over the {max_size:,}-byte limit "
            "(max-file-size); not checked"
        )
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        encoding = "utf-8"  # an undecodable first line: report the bad byte below
        problem = f"cannot decode: {error.msg}; not checked"
    else:
        problem = ""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise SourceError(
            f"not valid {encoding}: byte 0x{data[error.start]:02x} at offset {error.start}; "
            "not checked",
            line,
            column,
        ) from None
    except LookupError:
        raise SourceError(f"unknown source encoding {encoding!r}; not checked") from None
    if problem:
        raise SourceError(problem)
    return text, encoding


class NotRegularFile(SourceError):
    """A FIFO, device, socket or directory: never read."""


class TooLarge(SourceError):
    """A file over the size limit: never read."""


def file_kind(mode: int) -> str:
    """``a directory``, ``a FIFO``, ... for a file that is not a regular one."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_regular(path: Path, max_size: int) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), reading at most
    ``max_size`` + 1 bytes. SourceError for a FIFO, device, socket or a file over the
    limit; OSError when it cannot be opened. Never blocks on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(f"{file_kind(info.st_mode)}, not a regular file; not checked")
        if info.st_size > max_size:
            raise TooLarge(
                f"file is {info.st_size:,} bytes, over the {max_size:,}-byte limit "
                "(max-file-size); not checked"
            )
        chunks: list[bytes] = []
        left = max_size + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)
