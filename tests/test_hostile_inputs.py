"""Hostile inputs never take down a run, hang it or lose code or findings.

Every file here is generated at run time; no binary fixture is committed.
Each test reproduces one report of the reliability probe (issue 10).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qig_guard.cli import main
from qig_guard.engine import isolation, runner
from qig_guard.engine.source import read_regular

ASSIGNMENT = "model.basin_matcher.target_basin = basin\n"
FIXED = "model.basin_matcher.set_target_basin(basin)\n"
GOOD_FINDING = "good.py:1:1: QIG002"


def check(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, list[str], str]:  # exit code, report lines, stderr
    code = main(["check", "--isolated", "--no-cache", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory (a git root, so results are cached there) with one file holding
    a real finding."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "good.py").write_text(ASSIGNMENT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


DEEP = {
    "2000 nested lists": "x = " + "[" * 2000 + "]" * 2000 + "\n",
    "3000 nested calls": "x = " + "f(" * 3000 + ")" * 3000 + "\n",
    "20000 unary minus signs": "x = " + "-" * 20000 + "1\n",
    "an 8000-deep attribute chain": "x = a" + ".b" * 8000 + "\n",
    "a 3000-term sum": "x = " + " + ".join(["a"] * 3000) + "\n",
}


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("name", list(DEEP))
def test_code_too_deep_for_the_parser_costs_only_its_file(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, jobs: str
) -> None:
    (project / "deep.py").write_text(ASSIGNMENT + DEEP[name])
    started = time.monotonic()
    code, lines, _ = check(capsys, "-j", jobs)
    assert time.monotonic() - started < 30  # refused up front, not parsed for minutes
    assert code == 1
    assert any(line.startswith(GOOD_FINDING) for line in lines)
    [deep] = [line for line in lines if line.startswith("deep.py")]
    assert "QIG000" in deep
    assert "nest" in deep and "worker process" not in deep


def test_a_crashing_worker_costs_only_its_file(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(6):
        (project / f"other{number}.py").write_text(ASSIGNMENT)
    (project / "crash.py").write_text(ASSIGNMENT)
    check_one = runner._check_one

    def segfault_on_crash_py(configs: object, project: object, task: runner.Task) -> object:
        if task[0] == "crash.py":
            os.kill(os.getpid(), signal.SIGSEGV)
        return check_one(configs, project, task)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_check_one", segfault_on_crash_py)
    for jobs in ("1", "2"):
        code, lines, _ = check(capsys, "-j", jobs)
        assert code == 1
        assert len([line for line in lines if "QIG002" in line]) == 7  # good.py, other0-5.py
        [crash] = [line for line in lines if line.startswith("crash.py")]
        assert "QIG000" in crash and "killed by signal SIGSEGV" in crash


def test_a_file_over_the_time_limit_costs_only_its_file(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "slow.py").write_text(ASSIGNMENT)
    check_one = runner._check_one

    def hang_on_slow_py(configs: object, project: object, task: runner.Task) -> object:
        if task[0] == "slow.py":
            time.sleep(60)
        return check_one(configs, project, task)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_check_one", hang_on_slow_py)
    monkeypatch.setattr(isolation, "FILE_TIME_LIMIT", 1.0)
    code, lines, _ = check(capsys)
    assert code == 1
    assert any(line.startswith(GOOD_FINDING) for line in lines)
    [slow] = [line for line in lines if line.startswith("slow.py")]
    assert "took longer than the 1 s time limit" in slow


def test_an_exception_in_a_worker_is_an_internal_error(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(configs: object, project: object, task: runner.Task) -> object:
        raise TypeError("broken on purpose")

    monkeypatch.setattr(runner, "_check_one", broken)
    code, lines, _ = check(capsys)
    assert code == 2
    assert lines == [
        "good.py:1:1: QIG000 internal error (TypeError: broken on purpose); please report this"
    ]


VALID = {
    "a 400-term sum": "total = " + " + ".join(f"a{n}" for n in range(400)) + "\n",
    "500 implicitly concatenated strings": "text = (\n" + '    "s"\n' * 500 + ")\n",
    "a table of long concatenated strings (pydoc_data/topics.py)": "topics = {\n"
    + "".join(f"    'topic{n}': " + "'line\\n'\n" * 300 + "    ,\n" for n in range(20))
    + "}\n",
    "a parenthesized annotated target": "(x): int = 1\n(y) : int\n",
    "a parenthesized attribute target": "(self.x): int = 1\n",
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_python_is_checked(
    project: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    (project / "valid.py").write_text(VALID[name] + ASSIGNMENT)
    last = len(VALID[name].splitlines()) + 1
    code, lines, _ = check(capsys, "valid.py")
    assert code == 1
    assert [line.split(" QIG")[0] + " QIG" + line.split(" QIG")[1][:3] for line in lines] == [
        f"valid.py:{last}:1: QIG002"
    ]


def test_findings_after_a_rewritten_annotated_target_offer_no_fix(project: Path) -> None:
    (project / "ann.py").write_text("(x): int = 1\n" + ASSIGNMENT)
    assert main(["check", "--isolated", "--no-cache", "--fix", "ann.py"]) == 1
    assert (project / "ann.py").read_text() == "(x): int = 1\n" + ASSIGNMENT


def test_a_fifo_is_reported_not_read(project: Path) -> None:
    os.mkfifo(project / "pipe.py")
    os.mkfifo(project / "pipe.json")
    command = [sys.executable, "-m", "qig_guard"]
    checked = subprocess.run(
        [*command, "check", "--isolated", "--no-cache", "."],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 1
    assert "pipe.py:1:1: QIG000 a FIFO, not a regular file; not checked" in checked.stdout
    assert GOOD_FINDING in checked.stdout
    validated = subprocess.run(
        [*command, "basin", "validate", "pipe.json"], capture_output=True, text=True, timeout=120
    )
    assert validated.returncode == 1
    assert "a FIFO, not a regular file: not read" in validated.stdout


def test_a_symlink_to_dev_zero_is_not_read(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "zero.py").symlink_to("/dev/zero")
    code, lines, _ = check(capsys)
    assert code == 1
    assert "zero.py:1:1: QIG000 a character device, not a regular file; not checked" in lines


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_reads_stop_one_byte_past_the_limit() -> None:
    # /proc files report size 0 but hold more: only the read itself is bounded.
    assert len(read_regular(Path("/proc/self/maps"), 10)) == 11


LINE_LIKE = {"form feed": "\f", "\\x1c": "\x1c", "U+0085": "\x85", "U+2028": "\u2028"}


@pytest.mark.parametrize("name", list(LINE_LIKE))
def test_a_fix_never_swallows_code_after_a_line_like_character(
    project: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    before = f"x = 1  # a{LINE_LIKE[name]}b\n" + ASSIGNMENT
    (project / "t.py").write_text(before, encoding="utf-8", newline="")
    code, _, err = check(capsys, "--fix", "--unsafe-fixes", "t.py")
    assert code == 0 and "fixed 1" in err
    after = (project / "t.py").read_bytes().decode("utf-8")
    assert after == f"x = 1  # a{LINE_LIKE[name]}b\n" + FIXED


def test_a_fix_through_a_symlink_edits_its_target(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "real.py").write_text(ASSIGNMENT)
    (project / "link.py").symlink_to("real.py")
    code, _, _ = check(capsys, "--fix", "--unsafe-fixes", "link.py")
    assert code == 0
    assert (project / "link.py").is_symlink()
    assert (project / "real.py").read_text() == FIXED


def test_a_read_only_file_is_reported_and_left_alone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "good.py").chmod(0o444)
    code, lines, err = check(capsys, "--fix", "--unsafe-fixes")
    assert code == 2
    assert "good.py: fixes not written:" in err and "not writable (mode 0444)" in err
    assert any(line.startswith(GOOD_FINDING) for line in lines)  # the finding is kept
    assert (project / "good.py").read_text() == ASSIGNMENT


def test_a_read_only_directory_is_reported_without_a_traceback(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        project.chmod(0o555)  # a real read-only folder
    else:  # root writes anywhere: the OS answers as it would to a user
        import tempfile

        def refuse(*args: object, **kwargs: object) -> object:
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        code, lines, err = check(capsys, "--fix", "--unsafe-fixes")
    finally:
        project.chmod(0o755)
    assert code == 2
    assert "good.py: fixes not written: cannot write" in err and "Permission denied" in err
    assert "Traceback" not in err
    assert any(line.startswith(GOOD_FINDING) for line in lines)
    assert (project / "good.py").read_text() == ASSIGNMENT


def test_orphaned_temporary_files_are_cleaned_up(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = project / ".good.py.k3x_9q0z.tmp"  # what a SIGKILLed write leaves
    orphan.write_text("partial")
    unrelated = project / ".good.py.backup.tmp"
    unrelated.write_text("someone else's")
    code, _, _ = check(capsys, "--fix", "--unsafe-fixes")
    assert code == 0
    assert not orphan.exists() and unrelated.exists()


def test_a_report_names_a_non_utf8_file_without_a_traceback(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = os.fsdecode(b"caf\xe9.py")
    (project / name).write_text(ASSIGNMENT)
    code, _, err = check(capsys, "-o", "report.txt")
    assert code == 1 and "Traceback" not in err
    report = (project / "report.txt").read_bytes()
    assert b"caf\xe9.py:1:1: QIG002" in report
    code, _, _ = check(capsys, "--format", "json", "-o", "report.json")
    assert code == 1
    paths = {f["path"] for f in json.loads((project / "report.json").read_bytes())["findings"]}
    assert paths == {"good.py", name}


def test_any_crash_exits_2_without_a_traceback(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> object:
        raise KeyError("unexpected")

    monkeypatch.setattr(runner, "run", crash)
    code, _, err = check(capsys)
    assert code == 2
    assert err.startswith("qig-guard: internal error: KeyError: 'unexpected' (at ")
    assert "Traceback" not in err


def _cache_entries(project: Path) -> list[Path]:
    folder = project / ".qig-guard-cache"
    return sorted(p for p in folder.rglob("*.json") if not p.parent.name.startswith("facts-"))


@pytest.mark.parametrize(
    "damage",
    [
        "[]",
        '{"checksum": 1, "result": {"findings": "none"}}',
        '{"internal_error": false, "findings": [{"line": "1"}]}',
        "not json",
    ],
)
def test_a_damaged_cache_entry_is_recomputed(
    project: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    assert main(["check", "--isolated"]) == 1
    [entry] = _cache_entries(project)
    entry.write_text(damage)
    assert main(["check", "--isolated"]) == 1
    assert GOOD_FINDING in capsys.readouterr().out.splitlines()[-1]


def test_a_well_formed_cache_entry_that_was_altered_never_hides_findings(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--isolated"]) == 1
    [entry] = _cache_entries(project)
    stored = json.loads(entry.read_text())
    stored["result"]["findings"] = []  # right shape, wrong content
    entry.write_text(json.dumps(stored))
    capsys.readouterr()
    assert main(["check", "--isolated"]) == 1
    assert capsys.readouterr().out.startswith(GOOD_FINDING)


def _convert(*args: str) -> int:
    return main(["basin", "convert", *args])


@pytest.fixture
def legacy_packet(tmp_path: Path) -> Path:
    data = Path(__file__).parent / "basin" / "data" / "sync_packet.json"
    packet = tmp_path / "packet.json"
    packet.write_bytes(data.read_bytes())
    return packet


def test_convert_reports_a_lone_surrogate(
    legacy_packet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = legacy_packet.read_text().replace('"ocean-prime"', '"ocean\\ud800"')
    legacy_packet.write_text(text)
    new = legacy_packet.parent / "new.json"
    assert _convert(str(legacy_packet), "-o", str(new)) == 2
    err = capsys.readouterr().err
    assert "\\ud800, which UTF-8 cannot encode; not converted" in err
    assert not new.exists()


def test_convert_to_a_folder_is_an_error(
    legacy_packet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = legacy_packet.parent / "out.json"
    folder.mkdir()
    assert _convert(str(legacy_packet), "-o", str(folder), "--force") == 2
    assert "out.json is a folder; not converted" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("number", "words"),
    [(errno.EACCES, "Permission denied"), (errno.ENOSPC, "No space left"), (errno.EFBIG, "large")],
)
def test_convert_reports_write_errors(
    legacy_packet: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    number: int,
    words: str,
) -> None:
    def fail(descriptor: int) -> None:
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(os, "fsync", fail)  # the write reaches the disk here
    new = legacy_packet.parent / "new.json"
    assert _convert(str(legacy_packet), "-o", str(new)) == 2
    err = capsys.readouterr().err
    assert f"cannot write {new}" in err and words in err and "Traceback" not in err
    assert not new.exists()
    assert [p.name for p in legacy_packet.parent.iterdir()] == ["packet.json"]  # no temporary


def _collector_state(cycles: int) -> tuple[bool, int]:
    """Leave ``cycles`` self-referencing lists behind; say what the collector sees."""
    for _ in range(cycles):
        garbage: list[object] = []
        garbage.append(garbage)
    import gc

    return gc.isenabled(), gc.get_count()[0]


def test_workers_collect_cyclic_garbage_between_files_not_during_them() -> None:
    many = isolation.COLLECT_AFTER + 10_000
    outcomes = isolation.run_isolated([many, 0], _collector_state, lambda *_: (True, -1), jobs=1)
    (enabled, _), (_, left) = outcomes
    assert not enabled  # no collection can start in the middle of a file
    assert 0 <= left < isolation.COLLECT_AFTER  # the first file's cycles were collected


def _when(_: object) -> float:
    import time

    return time.monotonic()


def test_the_largest_tasks_go_first_and_outcomes_keep_their_order() -> None:
    tasks = ["aa", "a", "aaaa", "aaa"]
    started = isolation.run_isolated(tasks, _when, lambda *_: -1.0, jobs=1, size=len)
    assert sorted(tasks, key=lambda t: started[tasks.index(t)]) == ["aaaa", "aaa", "aa", "a"]


def test_integers_too_large_for_a_float_crash_no_rule() -> None:
    from rule_cases import rule_findings

    from qig_guard.rules import all_codes, load_rule, load_rules

    huge = "9" * 5000  # more digits than Python converts to an int from text
    large = "1" + "0" * 400  # an int, but beyond a float's range
    source = (
        "import torch\n\n"
        f"N = {huge}\nBIG = {large}\n\n\n"
        "def gap(current_basin, target_basin, other_basin, optimizer):\n"
        f"    d = torch.norm(current_basin - target_basin, p={huge})\n"
        f"    e = torch.pow(current_basin - target_basin, {large}).sum() ** {large}\n"
        f"    optimizer.step({large})\n"
        f"    return torch.lerp(current_basin, other_basin, {large})\n"
    )
    rules = [rule for rule in load_rules(all_codes()) if rule.code != "QIG000"]
    for rule in rules:  # each rule alone: any crash is an internal error (asserted)
        rule_findings(rule, source)
    # A weight beyond any float is outside the sync range.
    (finding,) = rule_findings(load_rule("QIG009"), source)
    assert "weight inf" in finding.message
