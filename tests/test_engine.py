"""The engine's boundary: what a run returns, in which order, and where QIG000 is defined."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qig_guard.config import Config
from qig_guard.engine.findings import FILE_ERROR, ordered
from qig_guard.engine.runner import check_file, run
from qig_guard.engine.selection import selected_codes
from qig_guard.rules import all_codes

ROOT = Path(__file__).resolve().parent.parent
VIOLATIONS = ROOT / "examples" / "violations" / "train_constellation.py"


def test_runs_return_findings_in_report_order_cached_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("b_train.py", "a_train.py", "c_train.py"):
        shutil.copy(VIOLATIONS, tmp_path / name)
    (tmp_path / "broken.py").write_text("model.basin_matcher.target_basin = (\n")
    config = Config(base=tmp_path)
    cold = run([tmp_path], config, jobs=2)
    (tmp_path / "a_train.py").write_text(VIOLATIONS.read_text() + "\n")  # one file not cached
    warm = run([tmp_path], config, jobs=2)
    assert 0 < warm.stats.cached_files < warm.stats.files
    for result in (cold, warm):
        assert len({f.path for f in result.findings}) == 4
        assert {f.code for f in result.findings} > {FILE_ERROR}
        assert result.findings == ordered(result.findings)
    data = VIOLATIONS.read_bytes()
    single = check_file(tmp_path / "a_train.py", data, config).findings
    assert len(single) > 2 and single == ordered(single)


def test_file_error_is_the_qig000_rule() -> None:
    from qig_guard.rules import load_rule

    assert load_rule(FILE_ERROR).code == FILE_ERROR == "QIG000"


def test_building_the_command_line_loads_no_basin_reader_or_validator(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from qig_guard.cli import main\n"
        "try:\n    main(['check', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', *sorted(m for m in sys.modules if m.startswith('qig_guard.basin')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path
    )
    loaded = out.stdout.strip().splitlines()[-1].split()[1:]
    assert "--select" in out.stdout
    assert loaded == ["qig_guard.basin", "qig_guard.basin.cli", "qig_guard.basin.fields"]


def test_rules_are_timed_only_when_asked() -> None:
    from qig_guard.engine.checker import check_source
    from qig_guard.rules import load_rules

    data = VIOLATIONS.read_bytes()
    rules = load_rules(all_codes())
    plain = check_source("train.py", data, Config(), rules)
    timed = check_source("train.py", data, Config(time_rules=True), rules)
    assert plain.rule_seconds == {}
    assert timed.rule_seconds and set(timed.rule_seconds) <= set(all_codes()) - {FILE_ERROR}
    assert all(seconds >= 0 for seconds in timed.rule_seconds.values())
    assert [f.to_dict() for f in timed.findings] == [f.to_dict() for f in plain.findings]


def test_statistics_lists_every_selected_rule_with_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qig_guard.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copy(VIOLATIONS, tmp_path / "train.py")
    assert main(["check", ".", "--isolated", "--no-cache", "--statistics", "-j", "1"]) == 1
    err = capsys.readouterr().err
    table = err[err.index("time in rules (s)") :].splitlines()[1:]
    times = {line.split()[1]: float(line.split()[0]) for line in table}
    assert set(times) == set(selected_codes(Config()))
    assert all(seconds >= 0 for seconds in times.values())
    main(["check", ".", "--isolated", "--no-cache", "--select", "QIG002,QIG010", "--statistics"])
    err = capsys.readouterr().err
    table = err[err.index("time in rules (s)") :].splitlines()[1:]
    assert sorted(line.split()[1] for line in table) == ["QIG002", "QIG010"]


@pytest.mark.parametrize("folder", ["", "engine", "facts", "rules"])
def test_cached_results_depend_on_all_checker_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    from qig_guard.engine import cache

    for name in cache.CHECKER_CODE:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "module.py").write_text("x = 1\n")
    monkeypatch.setattr(cache, "PACKAGE", tmp_path)
    before = cache.code_fingerprint()
    (tmp_path / folder / "module.py").write_text("x = 22\n")
    assert cache.code_fingerprint() != before


def test_stdin_reports_what_the_file_reports_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from qig_guard.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copy(VIOLATIONS, tmp_path / "train.py")
    main(["check", "train.py", "--isolated", "--no-cache", "-q"])
    from_file = capsys.readouterr().out.splitlines()
    stdin = io.TextIOWrapper(io.BytesIO(VIOLATIONS.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    main(["check", "-", "--stdin-filename", "train.py", "--isolated", "-q"])
    from_stdin = capsys.readouterr().out.splitlines()
    assert len(from_file) > 5 and from_stdin == from_file
