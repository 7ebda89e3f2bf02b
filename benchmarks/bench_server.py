"""Benchmark `qig-guard server`: diagnostics latency after an edit (never run as a test).

    python benchmarks/bench_server.py               # 2,000 lines, 20 edits
    python benchmarks/bench_server.py --lines 5000 --edits 50

A warm server (the file opened and checked once) gets one edit at a time, as
`textDocument/didChange` with the whole text; the latency is the time from
sending the change to receiving its `publishDiagnostics`, as an editor sees
it. Each edit changes the text (a cache miss: a full check). The server's own
CPU time per edit (with its checking child process) is printed too: on a
machine shared with other work the wall-clock latency includes waiting for a
core, the CPU time does not. The file is
research-style PyTorch code from benchmarks/corpus.py with violations in it,
so that the rules run and positions are computed. It is measured with the
default debounce and with none, which is the check alone plus the protocol.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import corpus  # noqa: E402
from lsp_client import LspClient  # noqa: E402

from qig_guard.server import DEBOUNCE_MS  # noqa: E402

VIOLATIONS = (
    "\n\ndef retarget(model, new_basin):\n"
    "    model.basin_matcher.target_basin = new_basin\n"
    "\n\ndef finetune_ocean(ocean, batch):\n"
    "    ocean.train()\n"
)


def qig_file(lines: int) -> str:
    """About ``lines`` lines of corpus modules, ending with two violations."""
    parts: list[str] = []
    count = 0
    for text in corpus.sample(10_000, seed=3):
        parts.append(text)
        count += text.count("\n")
        if count >= lines - VIOLATIONS.count("\n"):
            break
    return "".join(parts) + VIOLATIONS


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` and its children, which check the
    files (Linux)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
            except OSError:
                continue
            if int(entry.name) == pid or int(fields[1]) == pid:
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(
    root: Path, text: str, edits: int, debounce_ms: int
) -> tuple[list[float], list[float], int]:
    """Latencies and server CPU times in seconds of ``edits`` successive edits, and the
    findings per check."""
    client = LspClient(root, ["--debounce-ms", str(debounce_ms)])
    try:
        client.initialize(root)
        uri = (root / "experiment.py").as_uri()
        client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
        )
        findings = len(client.diagnostics(uri, version=1, timeout=120)["diagnostics"])
        latencies, cpu = [], []
        pid = client.process.pid
        for version in range(2, edits + 2):
            nonce = f"{debounce_ms}-{version}-{time.time_ns()}"
            edited = text.replace("ocean.train()", f"ocean.train()  # edit {nonce}")
            start, used = time.perf_counter(), cpu_seconds(pid)
            client.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [{"text": edited}],
                },
            )
            client.diagnostics(uri, version=version, timeout=120)
            latencies.append(time.perf_counter() - start)
            cpu.append(cpu_seconds(pid) - used)
        return latencies, cpu, findings
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=20)
    args = parser.parse_args()
    text = qig_file(args.lines)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"file: {text.count(chr(10))} lines; {cores} cores; load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "pyproject.toml").write_text('[tool.qig-guard]\ncache-dir = ".cache"\n')
        print(
            f"{'debounce':>10} {'findings':>9} {'median':>9} {'best':>9} {'worst':>9}"
            f" {'server CPU/edit (median)':>25}"
        )
        for debounce in (DEBOUNCE_MS, 0):
            latencies, cpu, findings = measure(root, text, args.edits, debounce)
            print(
                f"{debounce:>8}ms {findings:>9} {statistics.median(latencies) * 1000:>7.0f}ms "
                f"{min(latencies) * 1000:>7.0f}ms {max(latencies) * 1000:>7.0f}ms"
                f" {statistics.median(cpu) * 1000:>23.0f}ms"
            )


if __name__ == "__main__":
    main()
