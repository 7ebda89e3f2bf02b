"""Ecosystem check: run `qig-guard check` over whole upstream QIG repositories.

    python benchmarks/ecosystem.py                          # table, findings kept in ecosystem.json
    python benchmarks/ecosystem.py --compare before.json    # plus what appeared and disappeared
    python benchmarks/ecosystem.py --out after.json --show QIG006

As Ruff's ecosystem check does for every change: each repository's HEAD is
exported from its bare mirror (fetched as `../shared/eval/README.md` says; the
mirrors live in `.mirror/OWNER+NAME/repo` beside the folder that holds
`shared/`, or under `$QIG_MIRRORS`) into a temporary folder outside the
project, checked with `--isolated --preview --no-cache` (preview rules included:
this check is how a rule leaves preview), and summarised as findings per
rule per repository. Upstream code never enters the project.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORIES = (
    "GaryOcean428/pantheon-chat",
    "GaryOcean428/qig-studio",
    "GaryOcean428/SearchSpaceCollapse",
    "GaryOcean428/vex-agent",
    "GaryOcean428/qig-gcp-training",
    "GaryOcean428/qsearch",
)
Finding = tuple[str, str, int, str, str]  # repo, path, line, code, message


def mirrors() -> Path:
    default = HERE.parent.parent / ".mirror"
    return Path(os.environ.get("QIG_MIRRORS", default))


def export(repository: str, destination: Path) -> Path | None:
    """Write the Python files of the repository's HEAD under ``destination``; None when
    not fetched. (A mirror may lack its largest blobs, so files are read one by one.)"""
    git = mirrors() / repository.replace("/", "+") / "repo"
    if not git.exists():
        return None
    target = destination / repository.split("/")[1]
    listing = subprocess.run(
        ["git", "-C", str(git), "ls-tree", "-r", "-z", "HEAD"], capture_output=True, check=True
    ).stdout.decode()
    blobs = {}
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob" and mode != "120000" and path.endswith(".py"):
            blobs[sha] = [*blobs.get(sha, []), path]
    batch = subprocess.run(
        ["git", "-C", str(git), "cat-file", "--batch"],
        input="".join(f"{sha}\n" for sha in blobs).encode(),
        capture_output=True,
        check=True,
    ).stdout
    offset = 0
    for paths in blobs.values():
        header_end = batch.index(b"\n", offset)
        header = batch[offset:header_end].split()
        offset = header_end + 1
        if header[-1] == b"missing":
            continue
        size = int(header[2])
        content = batch[offset : offset + size]
        offset += size + 1
        for path in paths:
            file = target / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(content)
    return target


def check(repository: str, root: Path, qig_guard: str) -> list[Finding]:
    executable = shutil.which(qig_guard) or qig_guard
    options = ["--isolated", "--preview", "--no-cache", "--format", "json", "--exit-zero"]
    completed = subprocess.run(
        [executable, "check", *options, "."],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        sys.exit(f"qig-guard failed on {repository}:\n{completed.stderr}")
    document = json.loads(completed.stdout)
    name = repository.split("/")[1]
    return [(name, f["path"], f["line"], f["code"], f["message"]) for f in document["findings"]]


def table(findings: list[Finding]) -> str:
    counts = collections.Counter((f[0], f[3]) for f in findings)
    repos = sorted({f[0] for f in findings} | {r.split("/")[1] for r in REPOSITORIES})
    codes = sorted({f[3] for f in findings})
    lines = ["| repository | " + " | ".join(codes) + " | total |"]
    lines.append("|---" * (len(codes) + 2) + "|")
    for repo in repos:
        row = [counts[repo, code] for code in codes]
        lines.append(f"| {repo} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    totals = [sum(counts[repo, code] for repo in repos) for code in codes]
    lines.append("| **all** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    return "\n".join(lines)


def compare(before: list[Finding], after: list[Finding]) -> str:
    """Findings that appeared and disappeared, keyed without the message text."""

    def keyed(findings: list[Finding]) -> dict[tuple[str, str, int, str], str]:
        return {f[:4]: f[4] for f in findings}

    old, new = keyed(before), keyed(after)
    lines = []
    changes = (("+", new.keys() - old.keys(), new), ("-", old.keys() - new.keys(), old))
    for sign, keys, source in changes:
        for key in sorted(keys):
            repo, path, line, code = key
            lines.append(f"{sign} {repo}/{path}:{line}: {code} {source[key]}")
    return "\n".join(lines) or "no change"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("ecosystem.json"))
    parser.add_argument("--compare", type=Path, help="an earlier run's --out file")
    parser.add_argument("--show", help="print every finding of this code (or prefix)")
    parser.add_argument("--qig-guard", default="qig-guard", help="the executable to run")
    args = parser.parse_args()
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="qig-guard-ecosystem-") as temporary:
        for repository in REPOSITORIES:
            root = export(repository, Path(temporary) / repository.replace("/", "+"))
            if root is None:
                print(f"not fetched, skipped: {repository}", file=sys.stderr)
                continue
            findings.extend(check(repository, root, args.qig_guard))
    findings.sort()
    args.out.write_text(json.dumps(findings, indent=0) + "\n")
    print(table(findings))
    if args.show:
        for f in findings:
            if f[3].startswith(args.show):
                print(f"{f[0]}/{f[1]}:{f[2]}: {f[3]} {f[4]}")
    if args.compare:
        before = [tuple(f) for f in json.loads(args.compare.read_text())]
        print(compare(before, findings))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
