"""A minimal Language Server Protocol client over a child process's pipes (raw JSON-RPC),
for the server's end-to-end test and benchmark."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Message = dict[str, Any]


class LspClient:
    """Spawns ``qig-guard server`` and speaks JSON-RPC with Content-Length framing."""

    def __init__(self, cwd: Path, args: Sequence[str] = ()) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qig_guard", "server", *args],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._messages: queue.Queue[Message | None] = queue.Queue()
        self._next_id = 0
        self.notifications: list[Message] = []
        self.initialized: Message = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    self._messages.put(None)
                    return
                if header in (b"\r\n", b"\n"):
                    break
                name, _, value = header.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            assert length is not None, "a message without Content-Length"
            self._messages.put(json.loads(stream.read(length)))

    def send_raw(self, body: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def send(self, message: Message) -> None:
        self.send_raw(json.dumps({"jsonrpc": "2.0", **message}).encode())

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: Any = None, timeout: float = 60) -> Message:
        """Send a request and return its response (``result`` or ``error``)."""
        self._next_id += 1
        ident = self._next_id
        self.send({"id": ident, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == ident and "method" not in m, timeout)

    def wait(self, wanted: Callable[[Message], bool], timeout: float = 60) -> Message:
        """The next message for which ``wanted`` holds; notifications on the way are kept."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no such message within {timeout}s; stderr:\n{self.stderr}")
            try:
                message = self._messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if message is None:
                raise ConnectionError(f"the server closed its output; stderr:\n{self.stderr}")
            if "method" in message and "id" not in message:
                self.notifications.append(message)
            if wanted(message):
                return message

    def diagnostics(self, uri: str, version: int | None = None, timeout: float = 60) -> Message:
        """The next ``publishDiagnostics`` for ``uri`` (for ``version`` when given)."""
        return self.wait(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics"
                and m["params"]["uri"] == uri
                and (version is None or m["params"].get("version") == version)
            ),
            timeout,
        )["params"]

    def initialize(self, root: Path) -> Message:
        response = self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri(),
                "capabilities": {
                    "textDocument": {
                        "synchronization": {"didSave": True},
                        "codeAction": {
                            "codeActionLiteralSupport": {
                                "codeActionKind": {"valueSet": ["quickfix", "source"]}
                            }
                        },
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                    }
                },
            },
        )
        self.notify("initialized", {})
        self.initialized = response
        return response

    def close(self) -> int:
        """Shut down and exit; returns the server's exit code."""
        if self.process.poll() is None:
            self.request("shutdown")
            self.notify("exit")
        return self.process.wait(timeout=30)


def apply_text_edits(text: str, edits: list[Message]) -> str:
    """``text`` with LSP text edits applied (UTF-16 positions, as the server's default)."""
    lines = text.splitlines(keepends=True) or [""]

    def offset(position: Message) -> int:
        line, character = position["line"], position["character"]
        if line >= len(lines):
            return len(text)
        before = sum(len(item) for item in lines[:line])
        units = 0
        for index, char in enumerate(lines[line]):
            if units >= character:
                return before + index
            units += 2 if ord(char) > 0xFFFF else 1
        return before + len(lines[line])

    spans = sorted(
        ((offset(e["range"]["start"]), offset(e["range"]["end"]), e["newText"]) for e in edits),
        reverse=True,
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text
