"""Benchmark `qig-guard check` against the `ast.parse` floor (never run as a test).

    python benchmarks/bench_checker.py            # both corpora
    python benchmarks/bench_checker.py --lines 100000 --no-torch

Corpus 1 is generated research-style PyTorch code (benchmarks/corpus.py, the
worst case for text filters); corpus 2 is the installed torch package's source.
For each it prints: reading + `ast.parse` of every file (the floor), qig-guard
cold with 1 process and with all cores, warm cache, and one changed file (a
pre-commit run: interpreter start-up included), as seconds and as ratios to
the floor, plus what share of files and lines each stage skipped. When ruff is
installed its `ruff check` time is printed for reference.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus as corpus_builder  # noqa: E402


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def floor_seconds(files: list[Path]) -> float:
    start = time.perf_counter()
    for path in files:
        with contextlib.suppress(SyntaxError, ValueError):
            ast.parse(path.read_bytes())
    return time.perf_counter() - start


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr}")
    return elapsed, completed


def best_of(
    repeats: int, command: list[str], cwd: Path
) -> tuple[float, subprocess.CompletedProcess[str]]:
    runs = [timed(command, cwd) for _ in range(repeats)]
    return min(runs, key=lambda run: run[0])


def bench(name: str, root: Path, repeats: int) -> None:
    files = python_files(root)
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    print(f"\n== {name}: {len(files)} files, {lines:,} lines ({root})")
    floor = min(floor_seconds(files) for _ in range(repeats))
    qig = [sys.executable, "-m", "qig_guard", "check", str(root), "--isolated", "--exit-zero"]
    rows = [("ast.parse floor (in-process)", floor)]
    with tempfile.TemporaryDirectory() as work:
        cwd = Path(work)
        one, _ = best_of(repeats, [*qig, "--no-cache", "-j", "1"], cwd)
        rows.append(("qig-guard cold, 1 process", one))
        cores, completed = best_of(repeats, [*qig, "--no-cache", "--statistics"], cwd)
        rows.append((f"qig-guard cold, {os.cpu_count()} processes", cores))
        stats = re.search(r"^files: .*$", completed.stderr, re.MULTILINE)
        timed([*qig], cwd)  # fill the cache
        warm, _ = best_of(repeats, [*qig], cwd)
        rows.append(("qig-guard warm cache", warm))
        changed = files[len(files) // 2]
        original = changed.read_bytes()
        singles = []
        try:
            for attempt in range(repeats):  # a new edit each time: never a cache hit
                changed.write_bytes(original + f"\n# edited {attempt}\n".encode())
                singles.append(timed([*qig[:4], str(changed), *qig[5:]], cwd)[0])
        finally:
            changed.write_bytes(original)
        single = min(singles)
        rows.append(("one changed file (with start-up)", single))
        ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
        if Path(ruff).exists():
            reference, _ = best_of(
                repeats,
                [ruff, "check", str(root), "--no-cache", "--isolated", "--exit-zero", "-q"],
                cwd,
            )
            rows.append(("ruff check (default rules, reference)", reference))
    width = max(len(label) for label, _ in rows)
    for label, seconds in rows:
        print(f"  {label:<{width}}  {seconds:8.3f} s  {seconds / floor:6.2f}x floor")
    if stats:
        print(f"  stages: {stats.group(0)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=320_000, help="generated corpus size")
    parser.add_argument("--repeats", type=int, default=2, help="best of N for each timing")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch-source corpus")
    args = parser.parse_args()
    generated = corpus_builder.build(HERE / ".corpus" / "research", target_lines=args.lines)
    bench("generated research corpus", generated, args.repeats)
    if not args.no_torch:
        try:
            import importlib.util

            spec = importlib.util.find_spec("torch")
        except ImportError:
            spec = None
        if spec is None or spec.origin is None:
            print("\n== torch source: torch is not installed; skipped")
        else:
            bench("installed torch package source", Path(spec.origin).parent, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
