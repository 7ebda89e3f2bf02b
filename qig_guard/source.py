"""Reading Python source bytes: size limit and PEP 263 decoding."""

from __future__ import annotations

import io
import tokenize


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
