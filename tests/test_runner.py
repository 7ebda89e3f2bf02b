"""Whole runs: the filtered, cached and parallel runs report what a plain run reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qig_guard import __version__
from qig_guard.config import Config
from qig_guard.engine.findings import Finding
from qig_guard.engine.runner import run
from qig_guard.rules import all_codes, load_rule

ROOT = Path(__file__).resolve().parent.parent


def _corpus(directory: Path) -> Path:
    """Every rule's examples as files, plus the shipped violations example."""
    for code in all_codes():
        rule = load_rule(code)
        for index, example in enumerate(rule.INVALID):
            (directory / f"{code.lower()}_invalid_{index}.py").write_text(example.code)
        for index, source in enumerate(rule.VALID):
            (directory / f"{code.lower()}_valid_{index}.py").write_text(source)
    shutil.copytree(ROOT / "examples", directory / "examples")
    return directory


def _keys(findings: list[Finding]) -> list[tuple[object, ...]]:
    return [(*f.sort_key, f.end_line, f.end_column, f.fix) for f in findings]


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    return _corpus(tmp_path / "corpus")


def test_cached_parallel_and_unfiltered_runs_agree(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config(base=corpus.parent)
    plain = run([corpus], config, jobs=1, use_cache=False)
    assert plain.findings, "the corpus must produce findings"
    cold = run([corpus], config, jobs=2, use_cache=True)
    warm = run([corpus], config, jobs=2, use_cache=True)
    assert warm.stats.cached_files == warm.stats.files > 0
    assert warm.stats.parsed_files == 0
    monkeypatch.setenv("QIG_GUARD_PLAIN", "1")  # no gates: every rule over every whole file
    unfiltered = run([corpus], config, jobs=1, use_cache=False)
    expected = _keys(plain.findings)
    assert _keys(cold.findings) == expected
    assert _keys(warm.findings) == expected
    # Without gates every file is parsed, so syntax errors (QIG000) in files that no
    # rule looks at appear only there; every rule finding must agree.
    assert _keys([f for f in unfiltered.findings if f.code != "QIG000"]) == _keys(
        [f for f in plain.findings if f.code != "QIG000"]
    )
    assert plain.stats.parsed_lines < unfiltered.stats.parsed_lines  # the gates cut


def test_cache_misses_when_content_or_config_changes(corpus: Path) -> None:
    target = corpus / "edited.py"
    target.write_text("x = 1\n")
    run([corpus], Config(base=corpus.parent), jobs=1)
    target.write_text("student.load_state_dict(teacher.state_dict())\n")
    again = run([corpus], Config(base=corpus.parent), jobs=1)
    assert again.stats.files - again.stats.cached_files == 1
    assert any(f.path.endswith("edited.py") for f in again.findings)
    other = run([corpus], Config(frozen_models=("teacher",), base=corpus.parent), jobs=1)
    assert other.stats.cached_files == 0


def test_cache_misses_when_a_file_the_rules_read_changes(tmp_path: Path) -> None:
    # QIG009 reads a weight constant from the module it is imported from.
    (tmp_path / "constants.py").write_text("BLEND = 0.5\n")
    (tmp_path / "sync.py").write_text(
        "import torch\nfrom constants import BLEND\n\n\n"
        "def receive(own_basin, remote_basin):\n"
        "    return torch.lerp(own_basin, remote_basin, BLEND)\n"
    )
    config = Config(base=tmp_path)
    first = run([tmp_path], config, jobs=1)
    assert [f.code for f in first.findings] == ["QIG009"]
    assert run([tmp_path], config, jobs=1).stats.cached_files == 2
    (tmp_path / "constants.py").write_text("BLEND = 0.07\n")  # now inside the range
    again = run([tmp_path], config, jobs=1)
    assert again.stats.cached_files == 0 and not again.findings
    assert run([tmp_path], config, jobs=1).stats.cached_files == 2


def test_excludes_per_file_ignores_and_skipped_directories(corpus: Path) -> None:
    (corpus / ".venv" / "lib").mkdir(parents=True)
    (corpus / ".venv" / "lib" / "copy.py").write_text("a.load_state_dict(b.state_dict())\n")
    (corpus / "generated").mkdir()
    (corpus / "generated" / "copy.py").write_text("a.load_state_dict(b.state_dict())\n")
    (corpus / "scripts").mkdir()
    (corpus / "scripts" / "copy.py").write_text("a.load_state_dict(b.state_dict())\n")
    config = Config(
        exclude=("generated",), per_file_ignores=(("corpus/scripts/*.py", ("QIG001",)),)
    )
    paths = {f.path for f in run([corpus], config, use_cache=False).findings}
    assert not any(
        p.startswith(("corpus/.venv", "corpus/generated", "corpus/scripts")) for p in paths
    )
    assert paths


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qig_guard", *args], cwd=cwd, capture_output=True, text=True
    )


def test_cli_exit_codes_and_formats(corpus: Path) -> None:
    clean = corpus / "clean.py"
    clean.write_text("x = 1\n")
    assert _cli("check", "clean.py", "--isolated", cwd=corpus).returncode == 0
    found = _cli("check", ".", "--isolated", "--format", "json", cwd=corpus)
    assert found.returncode == 1
    document = json.loads(found.stdout)
    assert document["summary"]["findings"] == len(document["findings"]) > 0
    zero = _cli("check", ".", "--isolated", "--exit-zero", cwd=corpus)
    assert zero.returncode == 0 and zero.stdout
    github = _cli("check", ".", "--isolated", "--format", "github", cwd=corpus)
    assert github.stdout.startswith("::error file=")


def _main_in_subprocess(args: list[str], cwd: Path) -> tuple[list[str], int, list[str]]:
    """Run the CLI in a fresh interpreter: its output lines, exit code and which of
    libcst, torch and jsonschema it imported."""
    probe = (
        "import sys\n"
        "from qig_guard.cli import main\n"
        f"try:\n    code = main({args!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
        "heavy = [m for m in ('libcst', 'torch', 'jsonschema') if m in sys.modules]\n"
        "print('RESULT', code, *heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd)
    *lines, result = out.stdout.strip().splitlines()
    _, code, *modules = result.split()
    return lines, int(code), modules


def test_version_imports_neither_torch_libcst_nor_jsonschema(tmp_path: Path) -> None:
    lines, code, modules = _main_in_subprocess(["--version"], tmp_path)
    assert (lines, code, modules) == ([f"qig-guard {__version__}"], 0, [])


def test_check_never_imports_torch(corpus: Path) -> None:
    _, code, modules = _main_in_subprocess(
        ["check", ".", "--isolated", "--no-cache", "-j", "1"], corpus
    )
    assert code == 1 and "torch" not in modules


def test_warm_run_reads_the_cache_without_importing_libcst(corpus: Path) -> None:
    (corpus / ".git").mkdir()  # a project root: the cache lives there
    args = ["check", ".", "--isolated", "-j", "1"]
    cold_lines, cold_code, cold_modules = _main_in_subprocess(args, corpus)
    warm_lines, warm_code, warm_modules = _main_in_subprocess(args, corpus)
    assert cold_code == warm_code == 1
    assert "libcst" in cold_modules and "libcst" not in warm_modules
    assert warm_lines == cold_lines


# -- one pool of workers for the index and the checks ----------------------------------


def _pid(_task: object) -> int:
    import os

    return os.getpid()


def _doubled(task: int) -> int:
    return 2 * task


def test_a_pool_sends_a_task_to_the_worker_that_ran_its_key_before() -> None:
    from qig_guard.engine.isolation import WorkerPool

    with WorkerPool(2) as pool:
        first = pool.run(["a", "b"], _pid, lambda *_: -1, key=str)
        assert len(set(first)) == 2  # two workers, one task each
        again = pool.run(["b", "a"], _pid, lambda *_: -1, key=str)
        assert again == first[::-1]  # each key back on its worker
        assert pool.run([1, 2, 3], _doubled, lambda *_: -1) == [2, 4, 6]  # work sent


def test_a_pool_forks_new_workers_for_work_it_cannot_send() -> None:
    from qig_guard.engine.isolation import WorkerPool

    offset = 10
    with WorkerPool(1) as pool:
        (before,) = pool.run([0], _pid, lambda *_: -1)
        assert pool.run([1, 2], lambda task: task + offset, lambda *_: -1) == [11, 12]
        (after,) = pool.run([0], _pid, lambda *_: -1)
        assert after != before  # a closure cannot be pickled: its workers inherit it


_BASIN_FILE = (
    "import torch\n\n\nclass Matcher:\n    def set_reference(self, value):\n"
    "        self.reference_basin = value\n\n\n"
    "def drift(ocean_basin, model):\n"
    "    # d\u00e9rive\n"
    "    return torch.norm(model.current_basin - ocean_basin)\n"
)


def _indexed_then_checked(data: bytes) -> tuple[bool, int, list[tuple[int, int, str]]]:
    """In a worker: index ``data`` keeping its tree, then check it, counting the
    check's own parses with CPython's ``ast``."""
    import ast

    from qig_guard.engine.checker import check_source
    from qig_guard.facts import kept_trees
    from qig_guard.facts.project import ProjectFacts, file_facts
    from qig_guard.rules import load_rules

    rules = load_rules(all_codes())
    kept_trees.enable(1_000_000)
    project = ProjectFacts.merge([file_facts(data)])
    kept = kept_trees.take(data)
    if kept is not None:
        kept_trees.keep(data, kept)  # back, for the check
    parses = []
    parse = ast.parse

    def counted(source: object, *args: object, **kwargs: object) -> object:
        text = source if isinstance(source, bytes) else str(source).encode("latin-1", "replace")
        if b"reference_basin = value" in text:  # this file's, not an import's
            parses.append(source)
        return parse(source, *args, **kwargs)  # type: ignore[call-overload]

    ast.parse = counted  # type: ignore[assignment]
    try:
        result = check_source("m.py", data, Config(), rules, project)
    finally:
        ast.parse = parse
    return kept is not None, len(parses), [(f.line, f.column, f.code) for f in result.findings]


@pytest.mark.parametrize(
    ("data", "reused"),
    [
        (_BASIN_FILE.encode(), True),
        (b"# -*- coding: latin-1 -*-\n" + _BASIN_FILE.encode("latin-1"), False),
    ],
    ids=["utf-8", "latin-1"],
)
def test_a_tree_the_index_keeps_gives_the_check_its_own_findings(data: bytes, reused: bool) -> None:
    from qig_guard.engine.checker import check_source
    from qig_guard.engine.isolation import run_isolated
    from qig_guard.facts.project import ProjectFacts, file_facts
    from qig_guard.rules import load_rules

    ((kept, parses, findings),) = run_isolated([data], _indexed_then_checked, lambda *_: None, 1)
    project = ProjectFacts.merge([file_facts(data)])
    expected = check_source("m.py", data, Config(), load_rules(all_codes()), project)
    assert findings == [(f.line, f.column, f.code) for f in expected.findings]
    assert ("QIG006" in {code for *_, code in findings}) and kept
    assert (parses == 0) == reused  # a file not in UTF-8 is parsed again from its text


def test_a_pool_replaces_a_worker_killed_between_batches() -> None:
    import os
    import signal

    from qig_guard.engine.isolation import WorkerPool

    with WorkerPool(2) as pool:
        first = pool.run(["a", "b"], _pid, lambda *_: -1, key=str)
        os.kill(first[0], signal.SIGKILL)
        killed = next(w for w in pool._workers if w.process.pid == first[0])
        killed.process.join(timeout=10)  # until it is gone
        again = pool.run(["a", "b"], _pid, lambda *_: -1, key=str)
        assert again[1] == first[1] and again[0] not in (first[0], -1)
        assert pool.run([1, 2, 3], _doubled, lambda *_: -1) == [2, 4, 6]
