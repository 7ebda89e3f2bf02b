"""Findings and fixes: the plain data every checker and validator produces.

Nothing here imports libcst: findings are cached, sent between processes and
rendered by the reporters as plain data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

# The engine's own code: a file it could not check, or a rule that crashed on it.
FILE_ERROR = "QIG000"


@dataclass(frozen=True, order=True)
class Edit:
    """Replace the source between two positions with ``content``.

    Lines are 1-based, columns are 1-based character offsets in the line;
    the end position is exclusive.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


@dataclass(frozen=True)
class Fix:
    """A proposed change. ``safe`` follows Ruff: safe fixes keep the code's meaning."""

    description: str
    edits: tuple[Edit, ...]
    safe: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "safe": self.safe,
            "edits": [asdict(edit) for edit in self.edits],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fix:
        return cls(
            description=data["description"],
            safe=data["safe"],
            edits=tuple(Edit(**edit) for edit in data["edits"]),
        )


@dataclass(frozen=True)
class Finding:
    """One problem at one place in one file."""

    path: str
    line: int
    column: int
    code: str
    message: str
    end_line: int | None = None
    end_column: int | None = None
    fix: Fix | None = field(default=None, compare=False)

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.column, self.code, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "code": self.code,
            "message": self.message,
            "fix": self.fix.to_dict() if self.fix else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        fix = data.get("fix")
        return cls(
            path=data["path"],
            line=data["line"],
            column=data["column"],
            end_line=data.get("end_line"),
            end_column=data.get("end_column"),
            code=data["code"],
            message=data["message"],
            fix=Fix.from_dict(fix) if fix else None,
        )


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """``findings`` in report order: by path, line, column, code and message.

    The checker returns a file's findings in the order the rules found them; the
    producers of reported lists (the runner's results, ``--fix``'s remainder, the
    basin validator) order them here, once, and the reporters print them as given.
    """
    return sorted(findings, key=lambda finding: finding.sort_key)
