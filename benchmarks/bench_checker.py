"""Benchmark `qig-guard check` beside Ruff, on real QIG code and a generated corpus (never a test).

    python benchmarks/bench_checker.py                   # pantheon-chat, generated corpus
    python benchmarks/bench_checker.py --corpus pantheon-chat --repeats 3
    python benchmarks/bench_checker.py --corpus generated --lines 100000 --corpus torch
    python benchmarks/bench_checker.py --corpus pantheon-chat --repeats 6 --against ../base

Corpora: `pantheon-chat`, exported from its mirror (fetched as `../shared/eval/README.md`
says; skipped with a note when it is not there), `generated`, research-style PyTorch
code from benchmarks/corpus.py, and `torch`, the installed torch package's source.

For each corpus, in the same run and on the same files: the `ast.parse` floor (one
process), `ruff check --select ALL --no-cache` and, when installed, TorchFix; then
qig-guard cold (no cache, all cores), warm (cache filled) and one changed file (a
pre-commit run on one edit: start-up included). Each row gives the best wall time of
`--repeats`, its CPU time, the ratio to Ruff's wall time, the largest resident memory of
any one process of the run (the main process or a worker) and, for qig-guard, how many
files and lines libcst parsed (what the gates let through).

A machine's speed drifts (by 10% within minutes on a shared one), so a best-of time from
one run compared with one from another run misleads. `--against CHECKOUT` (another
checkout's root, say a `git worktree` of an older commit) instead alternates cold runs of
this checkout, of that one (its `qig_guard` put first on `PYTHONPATH`) and of Ruff,
`--repeats` times, and prints each one's median wall and CPU time and ratio to Ruff.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus as corpus_builder  # noqa: E402
import ecosystem  # noqa: E402

# Runs a command; prints its exit code, wall seconds, its processes' CPU seconds and the
# largest resident set (KiB) of any one of them (the wrapper's own start-up not counted).
_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "wall = time.perf_counter() - start\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stderr.buffer.write(done.stderr)\n"
    "print(done.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)\n"
)


@dataclass
class Run:
    wall: float
    cpu: float
    peak_kib: int
    stderr: str


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def floor_seconds(files: list[Path]) -> float:
    start = time.perf_counter()
    for path in files:
        with contextlib.suppress(SyntaxError, ValueError):
            ast.parse(path.read_bytes())
    return time.perf_counter() - start


def measured(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )
    code, wall, cpu, peak = done.stdout.split()
    if int(code) not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({code}):\n{done.stderr}")
    return Run(float(wall), float(cpu), int(peak), done.stderr)


def best(repeats: int, command: list[str], cwd: Path) -> Run:
    return min((measured(command, cwd) for _ in range(repeats)), key=lambda run: run.wall)


def bench(name: str, root: Path, repeats: int, against: Path | None = None) -> None:
    files = python_files(root)
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    print(f"\n== {name}: {len(files)} files, {lines:,} lines ({root})")
    qig = [sys.executable, "-m", "qig_guard", "check", str(root), "--isolated", "--exit-zero"]
    if against is not None:
        alternate(root, qig, repeats, against)
        return
    rows: list[tuple[str, Run, str]] = []
    marker = root / ".git"  # a project root, where the cache lives
    made_marker = not marker.exists()
    if made_marker:
        marker.mkdir()
    try:
        _runs(root, files, qig, repeats, rows)
    finally:
        shutil.rmtree(root / ".qig-guard-cache", ignore_errors=True)
        if made_marker:
            marker.rmdir()
    reference = next((run for label, run, _ in rows if label.startswith("ruff")), None)
    width = max(len(label) for label, _, _ in rows)
    for label, run, note in rows:
        ratio = f"{run.wall / reference.wall:5.2f}x ruff" if reference else ""
        peak = f"{run.peak_kib / 1024:6.0f} MiB peak" if run.peak_kib else " " * 15
        print(
            f"  {label:<{width}}  {run.wall:7.2f} s wall  {run.cpu:7.2f} s CPU  "
            f"{ratio:>11}  {peak}  {note}"
        )


def alternate(root: Path, qig: list[str], repeats: int, against: Path) -> None:
    """Cold runs of this checkout, of ``against`` and of Ruff, in turn, ``repeats``
    times: their medians, measured under the same drift."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    other = {**os.environ, "PYTHONPATH": str(against.resolve())}
    sides: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "qig-guard cold, this checkout": ([*qig, "--no-cache"], None),
        f"qig-guard cold, {against}": ([*qig, "--no-cache"], other),
        "ruff check --select ALL --no-cache": (
            [ruff, "check", str(root), "--select", "ALL", "--no-cache", "--isolated", "-q"],
            None,
        ),
    }
    runs: dict[str, list[Run]] = {label: [] for label in sides}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(repeats):
            for label, (command, env) in sides.items():
                runs[label].append(measured(command, Path(work), env))
    ruff_wall = statistics.median(run.wall for run in runs["ruff check --select ALL --no-cache"])
    width = max(map(len, runs))
    print(f"  medians of {repeats} alternating runs")
    for label, measured_runs in runs.items():
        wall = statistics.median(run.wall for run in measured_runs)
        cpu = statistics.median(run.cpu for run in measured_runs)
        print(
            f"  {label:<{width}}  {wall:7.2f} s wall  {cpu:7.2f} s CPU  "
            f"{wall / ruff_wall:5.2f}x ruff"
        )


def _runs(
    root: Path, files: list[Path], qig: list[str], repeats: int, rows: list[tuple[str, Run, str]]
) -> None:
    with tempfile.TemporaryDirectory() as work:
        cwd = Path(work)
        floor = min(floor_seconds(files) for _ in range(repeats))
        rows.append(("ast.parse floor (one process)", Run(floor, floor, 0, ""), ""))
        ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
        if Path(ruff).exists():
            command = [ruff, "check", str(root), "--select", "ALL", "--no-cache", "--isolated"]
            rows.append(
                (
                    "ruff check --select ALL --no-cache",
                    best(repeats, [*command, "--exit-zero", "-q"], cwd),
                    "",
                )
            )
        torchfix = shutil.which("torchfix")
        if torchfix:
            jobs = str(os.cpu_count() or 1)
            rows.append(("TorchFix", best(repeats, [torchfix, "-j", jobs, str(root)], cwd), ""))
        cold = best(repeats, [*qig, "--no-cache"], cwd)
        # --statistics times each rule, which costs: its run only counts the lines parsed.
        counted = measured([*qig, "--no-cache", "--statistics"], cwd)
        stats = re.search(r"parsed: (\d+) \((\d+) of their lines\)", counted.stderr)
        parsed = f"parsed {stats.group(1)} files, {int(stats.group(2)):,} lines" if stats else ""
        rows.append(("qig-guard cold (no cache, all cores)", cold, parsed))
        measured([*qig], cwd)  # fill the cache
        rows.append(("qig-guard warm (cache)", best(repeats, [*qig], cwd), ""))
        changed = files[len(files) // 2]
        original = changed.read_bytes()
        try:
            singles = []
            for attempt in range(repeats):  # a new edit each time: never a cache hit
                changed.write_bytes(original + f"\n# edited {attempt}\n".encode())
                singles.append(measured([*qig[:4], str(changed), *qig[5:]], cwd))
        finally:
            changed.write_bytes(original)
        rows.append(("qig-guard, one changed file", min(singles, key=lambda r: r.wall), ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        action="append",
        choices=("pantheon-chat", "generated", "torch"),
        help="what to check (repeatable; default: pantheon-chat and generated)",
    )
    parser.add_argument("--lines", type=int, default=320_000, help="generated corpus size")
    parser.add_argument("--repeats", type=int, default=2, help="best of N for each timing")
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout's root: alternate cold runs with it and Ruff, print medians",
    )
    args = parser.parse_args()
    for name in args.corpus or ["pantheon-chat", "generated"]:
        if name == "pantheon-chat":
            with tempfile.TemporaryDirectory() as exported:
                root = ecosystem.export("GaryOcean428/pantheon-chat", Path(exported))
                if root is None:
                    print(f"\n== pantheon-chat: no mirror under {ecosystem.mirrors()}; skipped")
                    continue
                bench("pantheon-chat HEAD", root, args.repeats, args.against)
        elif name == "generated":
            built = corpus_builder.build(HERE / ".corpus" / "research", target_lines=args.lines)
            bench("generated research corpus", built, args.repeats, args.against)
        else:
            import importlib.util

            spec = importlib.util.find_spec("torch")
            if spec is None or spec.origin is None:
                print("\n== torch source: torch is not installed; skipped")
                continue
            bench(
                "installed torch package source",
                Path(spec.origin).parent,
                args.repeats,
                args.against,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
