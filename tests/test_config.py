"""[tool.qig-guard]: discovery, validation naming the key, CLI overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from qig_guard.cli import main
from qig_guard.config import Config, ConfigError, ConfigResolver, discover, parse_table


def test_defaults() -> None:
    config = Config()
    assert config.frozen_models == ("ocean",) and config.select == ("ALL",)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"selct": ["QIG001"]}, "tool.qig-guard.selct"),
        ({"select": "QIG001"}, "tool.qig-guard.select"),
        ({"select": ["QIG001", "E501"]}, "tool.qig-guard.select[1]"),
        ({"frozen-models": [""]}, "tool.qig-guard.frozen-models[0]"),
        ({"basin-setter": "set target"}, "tool.qig-guard.basin-setter"),
        ({"max-file-size": -1}, "tool.qig-guard.max-file-size"),
        ({"max-file-size": True}, "tool.qig-guard.max-file-size"),
        ({"sync-weight-range": [0.2, 0.1]}, "tool.qig-guard.sync-weight-range"),
        ({"per-file-ignores": {"tests/*": ["X"]}}, 'tool.qig-guard.per-file-ignores."tests/*"[0]'),
        ({"strict-noqa": "yes"}, "tool.qig-guard.strict-noqa"),
    ],
)
def test_bad_values_name_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_table(table)
    assert raised.value.key == key
    assert str(raised.value).startswith(key + ": ")


def test_discover_nearest_pyproject_with_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.qig-guard]\nfrozen-models = ["teacher"]\n')
    nested = tmp_path / "pkg" / "sub"
    nested.mkdir(parents=True)
    (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    config = discover(nested)
    assert config.frozen_models == ("teacher",)
    assert config.root == tmp_path.resolve()


def test_cli_reports_config_error_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.qig-guard]\nignore = ["QIG00"]\nfoo = 1\n')
    monkeypatch.chdir(tmp_path)
    assert main(["check", "."]) == 2
    assert "tool.qig-guard.foo: unknown key" in capsys.readouterr().err


def test_cli_reports_invalid_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.qig-guard\n")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "."]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_cli_usage_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--jobs", "0", "--isolated"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["check", "--select", "E501"])
    assert raised.value.code == 2


def test_remembered_defaults_agree_with_a_fresh_lookup(tmp_path: Path) -> None:
    """Folders under no project are remembered (a tree without markers is not walked
    up to the root for every file), yet a project further down is still found."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "c" / "d").mkdir(parents=True)
    (tmp_path / "a" / "c" / ".git").mkdir()
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "pyproject.toml").write_text('[tool.qig-guard]\nselect = ["QIG001"]\n')
    order = ["a/b", "a", "a/c/d", "a/c", "e", "a/b", "."]
    shared = ConfigResolver()
    for folder in order:
        remembered = shared.for_folder(tmp_path / folder)
        fresh = ConfigResolver().for_folder(tmp_path / folder)
        assert (remembered.base, remembered.source, remembered.select) == (
            fresh.base,
            fresh.source,
            fresh.select,
        ), folder
    assert shared.for_folder(tmp_path / "a" / "c" / "d").base == tmp_path / "a" / "c"
    # Remembered for the run: a configuration written afterwards is seen by a new
    # resolver only (a folder under no project was walked up to / each time before).
    (tmp_path / "a" / "pyproject.toml").write_text('[tool.qig-guard]\nselect = ["QIG002"]\n')
    assert shared.for_folder(tmp_path / "a" / "b").source is None
    assert ConfigResolver().for_folder(tmp_path / "a" / "b").source is not None
