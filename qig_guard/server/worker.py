"""The server's checks, run in a child process that may die without taking the server along.

libcst's native parser overflows its stack, killing its process, on some deep
nesting (about 1,500 nested brackets, long unary or attribute chains), and can
take minutes on other inputs. The language server therefore parses and checks
in a child process: when the child dies or runs past the time limit it is
replaced, and the buffer gets a ``QIG000`` finding instead of a dead server.
The child keeps each buffer's :class:`~qig_guard.server.reparse.Reparser`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from qig_guard.engine.findings import FILE_ERROR, Finding, Fix
from qig_guard.server.documents import Projects, check_document, fix_all, fix_parses
from qig_guard.server.reparse import Reparser

TIME_LIMIT_SECONDS = 30.0


class WorkerError(Exception):
    """The child died or ran too long; the message says which."""


def _serve(connection: Connection, use_cache: bool) -> None:
    """The child's loop: answer each request with ``("ok", result)`` or ``("error", text)``."""
    sys.stdout = sys.stderr  # stdout is the editor's protocol stream
    projects = Projects(use_cache=use_cache)
    reparsers: dict[str, Reparser] = {}
    while True:
        try:
            operation, arguments = connection.recv()
        except (EOFError, OSError):
            return
        try:
            if operation == "check":
                uri, path, text, python = arguments
                reparser = reparsers.setdefault(uri, Reparser())
                result: Any = check_document(path, text, projects, reparser, python=python)
            elif operation == "fix_parses":
                uri, text, fix = arguments
                result = fix_parses(text, fix, reparsers.get(uri))
            elif operation == "fix_all":
                path, text, findings = arguments
                result = fix_all(path, text, findings, projects)
            else:  # "forget"
                reparsers.pop(arguments[0], None)
                result = None
            reply: tuple[str, Any] = ("ok", result)
        except Exception as error:
            reply = ("error", f"{type(error).__name__}: {error}")
        connection.send(reply)


class Worker:
    """The parent's handle on the child, started on first use and after each death."""

    def __init__(self, *, use_cache: bool = True, time_limit: float = TIME_LIMIT_SECONDS) -> None:
        self.use_cache = use_cache
        self.time_limit = time_limit
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    def start(self) -> None:
        """Start the child now (it imports libcst and the rules while the editor waits)."""
        if self._process is None or not self._process.is_alive():
            context = multiprocessing.get_context("spawn")  # no fork of a threaded server
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve, args=(child, self.use_cache), name="qig-guard-checker", daemon=True
            )
            process.start()
            child.close()
            self._process, self._connection = process, parent

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None

    def _call(self, operation: str, *arguments: Any) -> Any:
        self.start()
        assert self._process is not None and self._connection is not None
        process = self._process
        try:
            self._connection.send((operation, arguments))
            if not self._connection.poll(self.time_limit):
                self.stop()
                raise WorkerError(f"took longer than {self.time_limit:g} s; not checked")
            status, value = self._connection.recv()
        except (EOFError, OSError) as error:
            process.join(5)
            self.stop()
            raise WorkerError(
                f"the parser crashed on this file (exit code {process.exitcode}); not checked"
            ) from error
        if status != "ok":
            raise WorkerError(f"internal error, not checked ({value}); please report this")
        return value

    def check(self, uri: str, path: Path, text: str, python: bool) -> list[Finding]:
        """The buffer's findings; a ``QIG000`` finding when the child failed on it."""
        try:
            findings: list[Finding] = self._call("check", uri, path, text, python)
        except WorkerError as error:
            return [Finding(str(path), 1, 1, FILE_ERROR, str(error))]
        return findings

    def fix_parses(self, uri: str, text: str, fix: Fix) -> bool:
        try:
            return bool(self._call("fix_parses", uri, text, fix))
        except WorkerError:
            return False

    def fix_all(self, path: Path, text: str, findings: list[Finding]) -> str | None:
        try:
            fixed: str | None = self._call("fix_all", path, text, findings)
        except WorkerError:
            return None
        return fixed

    def forget(self, uri: str) -> None:
        """Drop what the child keeps for a closed buffer."""
        if self._process is not None:
            with contextlib.suppress(WorkerError):
                self._call("forget", uri)
