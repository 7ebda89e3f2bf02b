"""The command line's contract, through `main`: selectors, paths, per-file
configuration, adoption (--add-noqa, --baseline), Ruff's spellings."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rule_cases import MATCHER_MODULE

from qig_guard.cli import main

COPY = "student.load_state_dict(teacher.state_dict())\n"  # QIG001, no fix
SAFE = "model.basin_matcher.target_basin = new_basin\n"  # QIG002, safe beside MATCHER_MODULE
UNSAFE = 'import torch\n\nstate = torch.load(path, map_location="cpu")\n'  # QIG010, unsafe fix


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (a git root with no configuration) as the working directory."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[str], str]:
    """Exit code, stdout lines and stderr of `qig-guard check ARGS`."""
    code = main(["check", "--no-cache", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# 1. Selectors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--select", "QIG999"),
        ("--select", "QIG10"),  # a basin-file prefix: no checker rule
        ("--ignore", "QIG7"),
        ("--extend-select", "QIG001,QIG0123"),
        ("--extend-ignore", "E501"),
    ],
)
def test_unknown_selector_names_it_and_exits_2(
    project: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    write(project / "train.py", COPY)
    with pytest.raises(SystemExit) as raised:
        main(["check", option, value])
    assert raised.value.code == 2
    bad = value.split(",")[-1]
    assert f"'{bad}'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args", [["--select", ""], ["--select", "QIG001", "--ignore", "QIG00"], ["--ignore", "ALL"]]
)
def test_empty_selection_is_an_error(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    write(project / "train.py", COPY)
    code, out, err = check(capsys, *args)
    assert (code, out) == (2, [])
    assert "no rule selected" in err


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('select = ["QIG999"]', "tool.qig-guard.select[0]: 'QIG999' matches no rule"),
        ("select = []", "tool.qig-guard.select: empty selection"),
        ('ignore = ["QIG01", "QIG2"]', "tool.qig-guard.ignore[1]: 'QIG2' matches no rule"),
        (
            'per-file-ignores = { "tests/*" = ["QIG999"] }',
            "tool.qig-guard.per-file-ignores.\"tests/*\"[0]: 'QIG999' matches no rule",
        ),
    ],
)
def test_unknown_selector_in_config_names_the_key(
    project: Path, capsys: pytest.CaptureFixture[str], table: str, key: str
) -> None:
    write(project / "pyproject.toml", f"[tool.qig-guard]\n{table}\n")
    write(project / "train.py", COPY)
    code, out, err = check(capsys, ".")
    assert (code, out) == (2, [])
    assert key in err


def test_ignore_everything_in_config_is_an_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project / "pyproject.toml", '[tool.qig-guard]\nignore = ["ALL"]\n')
    code, _, err = check(capsys)
    assert code == 2 and "pyproject.toml: no rule selected" in err


# 2. Paths -------------------------------------------------------------------------


def test_missing_file_among_several_is_a_finding_and_the_rest_are_checked(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project / "a.py", "x = 1\n")
    write(project / "b.py", COPY)
    code, out, _ = check(capsys, "a.py", "missing.py", "b.py")
    assert code == 1
    assert [line.split(": ")[0] for line in out] == ["b.py:1:1", "missing.py:1:1"]
    assert "missing.py:1:1: QIG000 cannot read: No such file or directory" in out


def test_folder_without_python_files_warns(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project / "docs" / "index.md", "# docs\n")
    write(project / "src" / "ok.py", "x = 1\n")
    code, out, err = check(capsys, "docs", "src")
    assert (code, out) == (0, [])
    assert "qig-guard: warning: docs: no Python files to check" in err
    assert "src" not in err


def test_paths_are_normalised_before_globs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        project / "pyproject.toml",
        '[tool.qig-guard]\nper-file-ignores = { "a/*.py" = ["QIG001"] }\nexclude = ["gen/*.py"]\n',
    )
    write(project / "a" / "x.py", COPY)
    write(project / "gen" / "y.py", COPY)
    for spelling in ("a/x.py", "a/../a/x.py", "./a/./x.py", "gen/../gen/y.py"):
        assert check(capsys, spelling)[:2] == (0, []), spelling
    write(project / "b" / "x.py", COPY)
    code, out, _ = check(capsys, "a/../b/x.py")
    assert code == 1 and out[0].startswith("b/x.py:1:1: QIG001")


def test_dangling_symlink_named_explicitly_is_reported(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "gone.py").symlink_to(project / "nowhere.py")
    write(project / "b.py", COPY)
    code, out, _ = check(capsys, "gone.py", "b.py")
    assert code == 1
    assert out[0].startswith("b.py:1:1: QIG001")
    assert out[1].startswith("gone.py:1:1: QIG000 cannot read: dangling symbolic link to ")


# 3. Configuration per file ------------------------------------------------------------


def _monorepo(root: Path) -> None:
    write(root / "pyproject.toml", '[tool.qig-guard]\nfrozen-models = ["ocean"]\n')
    write(root / "train.py", COPY)
    write(root / "lab" / "pyproject.toml", '[tool.qig-guard]\nignore = ["QIG001"]\n')
    write(root / "lab" / "train.py", COPY)
    write(root / "tools" / "qig-guard.toml", 'per-file-ignores = { "old/*" = ["QIG001"] }\n')
    write(root / "tools" / "old" / "train.py", COPY)
    write(root / "tools" / "new" / "train.py", COPY)


def test_each_file_uses_its_nearest_configuration_from_any_directory(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _monorepo(project)
    expected = {"train.py", "tools/new/train.py"}
    code, out, _ = check(capsys, ".")
    assert code == 1
    assert {line.split(":")[0] for line in out} == expected
    monkeypatch.chdir(project / "lab")
    code, out, _ = check(capsys, "..")  # shown as absolute paths: outside the cwd
    assert {Path(line.split(":")[0]).relative_to(project).as_posix() for line in out} == expected
    assert check(capsys, "train.py")[:2] == (0, [])
    monkeypatch.chdir("/")
    code, out, _ = check(capsys, project / "tools")
    assert [line.split(":")[0] for line in out] == [f"{project}/tools/new/train.py"[1:]]


def test_config_option_and_isolated_apply_to_every_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _monorepo(project)
    assert len(check(capsys, ".", "--isolated")[1]) == 4
    write(project / "strict.toml", 'frozen-models = ["ocean"]\n')
    assert len(check(capsys, ".", "--config", "strict.toml")[1]) == 4


def test_cache_lives_at_the_project_root_never_in_the_working_directory(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _monorepo(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["check", str(project / "lab" / "train.py"), str(project / "train.py")]) == 1
    assert (project / "lab" / ".qig-guard-cache" / "CACHEDIR.TAG").is_file()
    assert (project / ".qig-guard-cache" / "CACHEDIR.TAG").is_file()
    assert not (elsewhere / ".qig-guard-cache").exists()
    loose = write(tmp_path / "loose" / "x.py", COPY)  # in no project: not cached
    assert main(["check", str(loose)]) == 1
    assert not list(tmp_path.glob("**/loose/.qig-guard-cache"))
    assert not (elsewhere / ".qig-guard-cache").exists()


# 4. Adoption ----------------------------------------------------------------------


NOQA_BEFORE = '''\
import torch


def restore(student, teacher, path):
    student.load_state_dict(teacher.state_dict())  # copy for the demo
    state = torch.load(path)  # noqa: E501
    other = torch.load(
        path, map_location="cpu"
    )
    model.basin_matcher.target_basin = x; note = """
    text"""
    return state, other
'''
NOQA_AFTER = '''\
import torch


def restore(student, teacher, path):
    student.load_state_dict(teacher.state_dict())  # copy for the demo  # noqa: QIG001
    state = torch.load(path)  # noqa: E501, QIG010
    other = torch.load(  # noqa: QIG010
        path, map_location="cpu"
    )
    model.basin_matcher.target_basin = x; note = """
    text"""
    return state, other
'''


def test_add_noqa_merges_with_comments_and_silences_the_findings(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = write(project / "restore.py", NOQA_BEFORE)
    target.chmod(0o640)
    code, _, err = check(capsys, "--add-noqa")
    assert code == 0
    assert target.read_text() == NOQA_AFTER
    assert target.stat().st_mode & 0o777 == 0o640
    assert "restore.py:10: no `# noqa` added: the line is inside a multi-line string" in err
    assert "Added 3 noqa directive(s)." in err
    code, out, _ = check(capsys)
    assert code == 1 and [line.split(": ")[1].split()[0] for line in out] == ["QIG002"]
    assert check(capsys, "--add-noqa")[0] == 0
    assert target.read_text() == NOQA_AFTER


def _baseline(path: Path) -> list[dict[str, str]]:
    document = json.loads(path.read_text())
    assert document["version"] == 1
    return list(document["findings"])


def test_baseline_hides_recorded_findings_across_line_moves(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    train = write(project / "src" / "train.py", "def f(student, teacher):\n    " + COPY)
    load = write(project / "src" / "load.py", UNSAFE)
    baseline = project / "qig-guard-baseline.json"
    code, out, err = check(capsys, "--baseline", baseline, "--update-baseline")
    assert (code, out) == (0, [])
    assert "recorded 2 finding(s)" in err
    entries = _baseline(baseline)
    assert [(e["path"], e["code"]) for e in entries] == [
        ("src/load.py", "QIG010"),
        ("src/train.py", "QIG001"),
    ]
    first = baseline.read_bytes()
    check(capsys, "--baseline", baseline, "--update-baseline")
    assert baseline.read_bytes() == first  # stable: an update without change is a no-op

    assert check(capsys, "--baseline", baseline)[:2] == (0, [])
    # Lines moving down keep the fingerprint; a new violation is reported alone.
    train.write_text("import os\n\n\ndef f(student, teacher):\n    " + COPY + "    " + SAFE)
    code, out, err = check(capsys, "--baseline", baseline)
    assert code == 1 and [line.split(": ")[1][:6] for line in out] == ["QIG002"]
    assert "2 finding(s) in the baseline not shown" in err
    # From another working directory, the same baseline matches the same files.
    monkeypatch.chdir(project / "src")
    code, out, _ = check(capsys, "--baseline", baseline, ".")
    assert code == 1 and out[0].startswith("train.py:6:5: QIG002")
    monkeypatch.chdir(project)
    # Fixing a recorded finding: stale until the next update drops it.
    load.write_text("import torch\n\nstate = torch.load(path, weights_only=True)\n")
    code, out, err = check(capsys, "--baseline", baseline, "src/load.py")
    assert (code, out) == (0, [])
    assert "1 baseline entries no longer match" in err
    check(capsys, "--baseline", baseline, "--update-baseline", "src/load.py")
    assert [(e["path"], e["code"]) for e in _baseline(baseline)] == [("src/train.py", "QIG001")]


def test_a_changed_flagged_line_leaves_the_baseline(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write(project / "train.py", COPY)
    baseline = project / "baseline.json"
    check(capsys, "--baseline", baseline, "--update-baseline")
    train.write_text("student.load_state_dict(teacher2.state_dict())\n")
    code, out, _ = check(capsys, "--baseline", baseline)
    assert code == 1 and out[0].startswith("train.py:1:1: QIG001")


def test_bad_baseline_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project / "train.py", COPY)
    write(project / "baseline.json", "[1, 2]")
    code, _, err = check(capsys, "--baseline", "baseline.json")
    assert code == 2 and "not a qig-guard baseline" in err
    code, _, err = check(capsys, "--update-baseline")
    assert code == 2 and "--update-baseline needs --baseline FILE" in err


# 5. Ruff's spellings ---------------------------------------------------------------


def test_output_format_quiet_and_silent(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project / "train.py", COPY)
    code, out, _ = check(capsys, "--output-format", "json")
    assert code == 1 and json.loads("\n".join(out))["summary"]["findings"] == 1
    code, out, err = check(capsys)
    assert code == 1 and len(out) == 1 and "Found 1 finding(s)." in err
    code, out, err = check(capsys, "-q")
    assert (code, len(out), err) == (1, 1, "")
    code, out, err = check(capsys, "--silent")
    assert (code, out, err) == (1, [], "")


def test_summary_counts_fixable_and_hidden_fixes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project / "a.py", SAFE)
    write(project / "matcher.py", MATCHER_MODULE)
    write(project / "b.py", UNSAFE)
    write(project / "c.py", COPY)
    _, _, err = check(capsys)
    assert err.splitlines()[-2:] == [
        "Found 3 finding(s).",
        "1 fixable with --fix (1 hidden fixes can be enabled with the `--unsafe-fixes` option).",
    ]
    _, _, err = check(capsys, "b.py")
    assert err.splitlines()[-1] == (
        "No fixes available (1 hidden fixes can be enabled with the `--unsafe-fixes` option)."
    )
    _, _, err = check(capsys, "--unsafe-fixes")
    assert err.splitlines()[-1] == "2 fixable with --fix."


def test_show_fixes_lists_what_fix_fixed(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project / "a.py", SAFE + SAFE.replace("new_basin", "other"))
    write(project / "matcher.py", MATCHER_MODULE)
    write(project / "c.py", COPY)
    code, out, err = check(capsys, "--fix", "--show-fixes")
    assert code == 1 and out == [out[0]] and out[0].startswith("c.py:1:1: QIG001")
    assert "Fixed 2 finding(s):\n- a.py:\n    2 x QIG002 (direct-basin-assignment)\n" in err


def test_statistics_prints_only_the_table(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project / "a.py", SAFE)
    write(project / "c.py", COPY + COPY)
    code, out, _ = check(capsys, "--statistics")
    assert code == 1
    assert out == [
        "    2  QIG001  weight-copy",
        "    1  QIG002  direct-basin-assignment",
        "    3  total",
    ]


def test_stdin_with_stdin_filename(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        project / "pyproject.toml",
        '[tool.qig-guard]\nper-file-ignores = { "lab/*" = ["QIG001"] }\n',
    )

    def stdin(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))

    stdin(COPY)
    code, out, _ = check(capsys, "-", "--stdin-filename", "src/train.py")
    assert code == 1 and out[0].startswith("src/train.py:1:1: QIG001")
    stdin(COPY)
    assert check(capsys, "-", "--stdin-filename", "lab/train.py")[:2] == (0, [])
    stdin(COPY + SAFE)
    # a lone buffer: the index cannot show `basin_matcher`'s class, so the fix is unsafe
    fix = ["--fix", "--unsafe-fixes", "--no-cache"]
    code = main(["check", "-", "--stdin-filename", "src/t.py", *fix])
    out, err = capsys.readouterr()
    assert out == COPY + "model.basin_matcher.set_target_basin(new_basin)\n"
    assert code == 1 and err.startswith("src/t.py:1:1: QIG001")
    assert not (project / "src").exists()


# 6 and the basin command: output options ----------------------------------------------


def test_basin_validate_takes_checks_output_options(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project / "basins" / "bad.json", '{"schema_version": 1}')
    assert main(["basin", "validate", "basins"]) == 1
    assert main(["basin", "validate", "basins", "--exit-zero"]) == 0
    report = project / "report.json"
    assert main(["basin", "validate", "basins", "--output-format", "json", "-o", str(report)]) == 1
    assert json.loads(report.read_text())["summary"]["files_checked"] == 1
    assert main(["basin", "validate", "basins", "--output-file", str(report), "-s"]) == 1
    capsys.readouterr()
    assert main(["basin", "validate", "basins", "--silent"]) == 1
    assert capsys.readouterr() == ("", "")


# 8. Docs that match the tool --------------------------------------------------------


@pytest.mark.parametrize("code", [f"QIG{n}" for n in range(100, 107)])
def test_explain_basin_code(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", code.lower()]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"## {code} basin-") and ".." not in text
