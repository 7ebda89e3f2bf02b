"""The server's engine side: buffers checked as `check` checks files, fixes, noqa, pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rule_cases import MATCHER_MODULE

from qig_guard.basin import save_basin, validate_basin_file
from qig_guard.cli import main
from qig_guard.config import load_pyproject
from qig_guard.engine import runner
from qig_guard.engine.findings import Edit, Finding, Fix
from qig_guard.server.documents import (
    Projects,
    check_document,
    fix_all,
    fix_parses,
    noqa_edit,
    source_bytes,
)
from qig_guard.server.pages import hover_text, rule_url, sections
from qig_guard.server.reparse import Reparser

VIOLATION = "def retarget(model, b):\n    model.basin_matcher.target_basin = b\n"


def _project(tmp_path: Path, table: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[tool.qig-guard]\n{table}\n")
    return tmp_path


def _codes(findings: list[Finding]) -> list[str]:
    return [finding.code for finding in findings]


def test_buffer_findings_equal_a_check_run_of_the_saved_file(tmp_path: Path) -> None:
    root = _project(tmp_path, 'per-file-ignores = { "tests/**" = ["QIG002"] }')
    projects = Projects()
    for name in ("train.py", "tests/test_train.py"):
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(VIOLATION)
        from_buffer = check_document(path, VIOLATION, projects)
        ran = runner.run([path], load_pyproject(root / "pyproject.toml"), jobs=1, use_cache=False)
        assert [f.to_dict() | {"path": ""} for f in from_buffer] == [
            f.to_dict() | {"path": ""} for f in ran.findings
        ]
    assert _codes(check_document(root / "train.py", VIOLATION, projects)) == ["QIG002"]
    assert check_document(root / "tests/test_train.py", VIOLATION, projects) == []


def test_basin_buffer_findings_equal_the_validators(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "basins").mkdir()
    path = save_basin(
        root / "basins" / "gary.json",
        [0.01 * i for i in range(64)],
        source_model="Gary-A",
        extracted_from="ckpt.pt",
    )
    broken = path.read_text().replace('"Gary-A"', "NaN", 1).replace("0.02,", "Infinity,", 1)
    path.write_text(broken)
    from_buffer = check_document(path, broken, Projects())
    assert {f.code for f in from_buffer} == {"QIG100", "QIG102"}
    assert from_buffer == validate_basin_file(path, load_pyproject(root / "pyproject.toml"))
    assert check_document(root / "settings.json", broken, Projects()) == []  # not a basin glob


def test_noqa_excludes_and_other_files(tmp_path: Path) -> None:
    root = _project(tmp_path, 'exclude = ["generated/**"]')
    projects = Projects()
    suppressed = VIOLATION.replace(" = b\n", " = b  # noqa: QIG002\n")
    assert check_document(root / "a.py", suppressed, projects) == []
    assert check_document(root / "generated" / "a.py", VIOLATION, projects) == []
    assert check_document(root / "notes.txt", VIOLATION, projects) == []


def test_results_go_through_checks_cache(tmp_path: Path) -> None:
    root = _project(tmp_path, 'cache-dir = "cache"')
    first = check_document(root / "a.py", VIOLATION, Projects())
    assert list((root / "cache").rglob("*.json"))
    assert check_document(root / "a.py", VIOLATION, Projects()) == first
    check_document(root / "b.py", VIOLATION + "\n", Projects(use_cache=False))
    assert len(list((root / "cache").rglob("*.json"))) == 1


def test_configuration_errors_and_changes_are_picked_up(tmp_path: Path) -> None:
    root = _project(tmp_path, "selct = []")
    projects = Projects()
    (finding,) = check_document(root / "a.py", VIOLATION, projects)
    assert finding.code == "QIG000"
    assert "tool.qig-guard.selct: unknown key" in finding.message
    pyproject = root / "pyproject.toml"
    pyproject.write_text('[tool.qig-guard]\nignore = ["QIG002"]\n')
    os.utime(pyproject, ns=(1, 1))  # a different mtime, however fast the file system
    assert check_document(root / "a.py", VIOLATION, projects) == []


def test_unparsable_buffer_is_a_finding(tmp_path: Path) -> None:
    (finding,) = check_document(tmp_path / "a.py", "basin.target_basin = (\n", Projects())
    assert finding.code == "QIG000" and "syntax error" in finding.message


def test_source_bytes_follow_the_encoding_declaration() -> None:
    assert source_bytes("# -*- coding: latin-1 -*-\nname = 'é'\n").endswith(b"'\xe9'\n")
    assert source_bytes("name = 'é'\n") == "name = 'é'\n".encode()
    # A declaration the text does not fit: UTF-8, for check to report.
    assert source_bytes("# coding: ascii\nname = 'é'\n").endswith("'é'\n".encode())


def test_fix_all_applies_safe_fixes_only(tmp_path: Path) -> None:
    text = (
        "def f(model, gary, b):\n"
        "    model.basin_matcher.target_basin = b\n"
        "    gary.target_basin = b\n"
    )
    projects = Projects(use_cache=False)
    findings = check_document(tmp_path / "a.py", text, projects)
    assert [f.fix is not None and f.fix.safe for f in findings] == [True, False]
    assert fix_all(tmp_path / "a.py", text, findings, projects) == (
        "def f(model, gary, b):\n    model.basin_matcher.set_target_basin(b)\n"
        "    gary.target_basin = b\n"
    )
    only_unsafe = text.replace("    model.basin_matcher.target_basin = b\n", "")
    unsafe_findings = check_document(tmp_path / "a.py", only_unsafe, projects)
    assert fix_all(tmp_path / "a.py", only_unsafe, unsafe_findings, projects) is None
    (finding, _) = findings
    assert finding.fix is not None and fix_parses(text, finding.fix)
    assert fix_parses(text, finding.fix, Reparser())
    broken = Fix("breaks", (Edit(2, 5, 2, 5, "("),))
    assert not fix_parses(text, broken) and not fix_parses(text, broken, Reparser())


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("x.target_basin = b", "x.target_basin = b  # noqa: QIG002"),
        ("x.target_basin = b  # why", "x.target_basin = b  # why  # noqa: QIG002"),
        ("x.target_basin = b  # noqa: QIG001", "x.target_basin = b  # noqa: QIG001, QIG002"),
        ("x.target_basin = b  # noqa", "x.target_basin = b  # noqa: QIG002"),
        ("x.target_basin = b  # NOQA:qig001", "x.target_basin = b  # noqa: QIG001, QIG002"),
    ],
)
def test_noqa_edit(line: str, expected: str) -> None:
    finding = Finding("a.py", 2, 1, "QIG002", "m")
    edit = noqa_edit(f"import x\n{line}\ny = 1\n", finding)
    assert edit is not None
    assert (edit.line, edit.column, edit.end_line, edit.end_column) == (2, 1, 2, len(line) + 1)
    assert edit.content == expected


@pytest.mark.parametrize(
    "text",
    [
        'x.target_basin = """a\nb"""\n',  # line 1 ends inside a string
        "x.target_basin = 1 + \\\n    2\n",  # a backslash continuation
    ],
)
def test_no_noqa_where_a_comment_cannot_go(text: str) -> None:
    assert noqa_edit(text, Finding("a.py", 1, 1, "QIG002", "m")) is None


def test_no_noqa_for_file_errors() -> None:
    assert noqa_edit("x = (\n", Finding("a.py", 1, 1, "QIG000", "m")) is None


def test_no_noqa_edit_when_the_directive_names_the_code() -> None:
    text = "x.target_basin = b  # noqa:QIG002\n"
    assert noqa_edit(text, Finding("a.py", 1, 1, "QIG002", "m")) is None


def test_rule_pages() -> None:
    assert rule_url("QIG004") == (
        "https://github.com/qig-guard/qig-guard/blob/main/docs/rules.md#qig004-undetached-basin"
    )
    assert rule_url("QIG102") is not None and rule_url("QIG999") is None
    text = hover_text("QIG004")
    assert text is not None and text.startswith("**QIG004 undetached-basin**")
    assert "**Use instead**" in text and "**Example**" not in text
    basin = hover_text("QIG102")
    assert basin is not None and "NaN" in basin
    assert sections("## A\none\n## B\ntwo\n") == {"A": "one", "B": "two"}


def _probe(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_version_never_imports_pygls() -> None:
    out = _probe(
        "import sys\nfrom qig_guard.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pygls', 'lsprotocol', 'libcst', 'torch') if m in sys.modules))"
    )
    assert out.stdout.splitlines()[-1] == "[]"


def test_the_server_never_imports_torch(tmp_path: Path) -> None:
    pytest.importorskip("pygls")
    out = _probe(
        "import sys\nfrom pathlib import Path\n"
        "from qig_guard.server.app import create_server\n"
        "from qig_guard.server.documents import Projects, check_document\n"
        "from qig_guard.server.pages import hover_text\n"
        "create_server()\n"
        f"path = Path({str(tmp_path / 'a.py')!r})\n"
        f"(finding,) = check_document(path, {VIOLATION!r}, Projects())\n"
        "print(finding.code, bool(hover_text('QIG002')))\n"
        "print('torch' in sys.modules)"
    )
    assert out.stdout.splitlines()[-2:] == ["QIG002 True", "False"], out.stderr


def test_server_without_pygls_is_a_clear_usage_error() -> None:
    out = _probe(
        "import sys\nsys.modules['pygls'] = None\nfrom qig_guard.cli import main\n"
        "sys.exit(main(['server']))"
    )
    assert out.returncode == 2
    assert "pip install 'qig-guard[server]'" in out.stderr


def test_server_help_lists_the_debounce(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["server", "--help"])
    assert "--debounce-ms" in capsys.readouterr().out
    assert main(["server", "--debounce-ms", "-1"]) == 2


def test_a_buffer_is_checked_with_the_workspace_index(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.qig-guard]\n")
    text = "def f(model, b):\n    model.basin_matcher.target_basin = b\n"
    projects = Projects(use_cache=False)
    (finding,) = check_document(tmp_path / "a.py", text, projects)
    assert finding.fix is not None and not finding.fix.safe  # nothing says what it holds
    (tmp_path / "matcher.py").write_text(MATCHER_MODULE)  # makes the QIG002 fix safe
    fresh = Projects(use_cache=False)  # (a live one looks again after FACTS_INTERVAL)
    (finding,) = check_document(tmp_path / "a.py", text, fresh)
    assert finding.fix is not None and finding.fix.safe
