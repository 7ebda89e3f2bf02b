"""How much each rule's gate lets through, and proof that it loses nothing.

    python benchmarks/gate_report.py [PATH ...]   # default: generated corpus + torch source
    python benchmarks/gate_report.py --wildcard PATH ...
    python benchmarks/gate_report.py --wildcard --whole-runs PATH ...   # large trees

For each rule, alone: the share of files its gate passes and of lines it hands to libcst
(lower is faster), and whether running the rule over every whole file, gates ignored,
finds anything the gated run missed (it must not: a gate may only skip code the rule
cannot flag). `QIG_GUARD_PLAIN=1` gives the ungated run on the command line.

`--wildcard` sets the configured names of basins, of the frozen and active models and of
sleep functions to `*` (not basin tables or owners, which would take precedence over
basin names; the same as `--config` with such a `[tool.qig-guard]` table). Every
identifier then passes the gates' name conditions, so their shape conditions (`a - b`
next to a norm, a summed product over norms) meet all the numeric code of any large
tree, such as torch's own source, where real QIG code would offer only a few examples.

`--whole-runs` compares two whole `qig-guard check` runs per PATH instead (all rules
together, all cores: minutes rather than hours on torch's source): the gated run and a
`QIG_GUARD_PLAIN=1` run, and prints every finding only one of them reports.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus as corpus_builder  # noqa: E402

from qig_guard.config import Config  # noqa: E402
from qig_guard.engine.checker import check_source, check_text, own_index  # noqa: E402
from qig_guard.engine.findings import FILE_ERROR  # noqa: E402
from qig_guard.engine.source import SourceError, decode  # noqa: E402
from qig_guard.facts.project import FactsCache, ProjectFacts, index_words  # noqa: E402
from qig_guard.rules import all_codes, load_rule  # noqa: E402


def sources(paths: list[Path]) -> list[tuple[str, bytes]]:
    return [
        (str(file), file.read_bytes())
        for path in paths
        for file in sorted(path.rglob("*.py") if path.is_dir() else [path])
        if "__pycache__" not in file.parts
    ]


WILDCARD = {
    "frozen_models": ("*",),
    "basin_names": ("*",),
    "active_models": ("*",),
    "sleep_functions": ("*",),
}


def report(files: list[tuple[str, bytes]], config: Config) -> int:
    project = ProjectFacts.merge(
        FactsCache(None, index_words(config)).summaries(data for _, data in files)
    )
    total_lines = sum(data.count(b"\n") for _, data in files)
    print(f"{len(files)} files, {total_lines:,} lines")
    print(f"{'rule':8} {'files':>8} {'lines parsed':>14}  lost findings")
    lost_any = 0
    for code in all_codes():
        if code == FILE_ERROR:
            continue
        rule = load_rule(code)
        passed = parsed = lost = 0
        for path, data in files:
            gated = check_source(path, data, config, [rule], project)
            if gated.parsed:
                passed += 1
                parsed += gated.parsed_lines
            try:
                text, _ = decode(data, config.max_file_size)
            except SourceError:
                continue
            plain = check_text(path, text, config, [rule], project or own_index(text, config))
            wanted = {(f.line, f.column, f.message) for f in plain.findings if f.code == code}
            found = {(f.line, f.column, f.message) for f in gated.findings if f.code == code}
            lost += len(wanted - found)
        lost_any += lost
        print(
            f"{code:8} {passed / len(files):8.1%} {parsed / max(total_lines, 1):14.1%}"
            f"  {lost or 'none'}"
        )
    return 1 if lost_any else 0


Finding = tuple[str, int, int, str, str]


def whole_run(path: Path, plain: bool, wildcard: bool) -> set[Finding]:
    """The findings of ``qig-guard check`` on ``path``, gated or plain."""
    with tempfile.TemporaryDirectory() as folder:
        options = ["--isolated"]
        if wildcard:
            settings = Path(folder) / "pyproject.toml"
            table = "".join(f'{k.replace("_", "-")} = ["*"]\n' for k in WILDCARD)
            settings.write_text(f"[tool.qig-guard]\n{table}", encoding="utf-8")
            options = ["--config", str(settings)]
        environment = dict(os.environ)
        environment.pop("QIG_GUARD_PLAIN", None)
        # Not the checked folder first on ``sys.path``: torch's own `types.py` would shadow
        # the standard library's (Python 3.11 on; older ones ignore it).
        environment["PYTHONSAFEPATH"] = "1"
        if plain:
            environment["QIG_GUARD_PLAIN"] = "1"
        command = ["check", "--no-cache", "--exit-zero", *options, "--format", "json", "."]
        done = subprocess.run(
            [sys.executable, "-m", "qig_guard", *command],
            cwd=path,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
    return {
        (f["path"], f["line"], f["column"], f["code"], f["message"])
        for f in json.loads(done.stdout)["findings"]
    }


def compare_whole_runs(paths: list[Path], wildcard: bool) -> int:
    lost_any = 0
    for path in paths:
        gated, plain = whole_run(path, False, wildcard), whole_run(path, True, wildcard)
        print(f"{path}: {len(gated)} findings gated, {len(plain)} plain")
        for finding in sorted(plain - gated):
            print("  only plain:", *finding[:4], finding[4][:100])
        for finding in sorted(gated - plain):
            print("  only gated:", *finding[:4], finding[4][:100])
        lost_any |= bool(plain - gated)
    return 1 if lost_any else 0


def main() -> int:
    arguments = sys.argv[1:]
    config = Config()
    wildcard = "--wildcard" in arguments
    if wildcard:
        arguments.remove("--wildcard")
        config = replace(config, **WILDCARD)
    if "--whole-runs" in arguments:
        arguments.remove("--whole-runs")
        return compare_whole_runs([Path(arg) for arg in arguments], wildcard)
    paths = [Path(arg) for arg in arguments]
    if not paths:
        paths = [corpus_builder.build(HERE / ".corpus" / "research", target_lines=40_000)]
        spec = importlib.util.find_spec("torch")
        if spec is not None and spec.origin is not None:
            paths.append(Path(spec.origin).parent / "nn")
    return report(sources(paths), config)


if __name__ == "__main__":
    sys.exit(main())
