"""One file through the engine: decoding, parsing, rule isolation, suppressions."""

from __future__ import annotations

from qig_guard.config import Config
from qig_guard.engine.checker import check_source
from qig_guard.engine.findings import ordered
from qig_guard.rules.base import Rule


def run(source: str | bytes, *rules: type[Rule], config: Config | None = None) -> list[str]:
    data = source.encode() if isinstance(source, str) else source
    result = check_source("m.py", data, config or Config(), list(rules))
    return [f"{f.line}:{f.column} {f.code} {f.message}" for f in ordered(result.findings)]


def test_finds_resolved_call_with_position(torch_save_rule: type[Rule]) -> None:
    source = "from torch import save as s\n\ndef f(basin):\n    s(basin, 'b.pt')\n"
    assert run(source, torch_save_rule) == ["4:5 QIG900 torch.save of a basin"]


def test_shadowed_name_is_not_flagged(torch_save_rule: type[Rule]) -> None:
    source = "from torch import save\n\ndef f(save):\n    save(basin, 'b.pt')\n"
    assert run(source, torch_save_rule) == []


def test_trigger_miss_skips_parsing(torch_save_rule: type[Rule]) -> None:
    result = check_source("m.py", b"x = (\n", Config(), [torch_save_rule])
    assert result.findings == [] and not result.parsed


def test_syntax_error_is_reported_with_its_place(torch_save_rule: type[Rule]) -> None:
    (line,) = run("save = 1\ndef f(:\n", torch_save_rule)
    assert line.startswith("2:7 QIG000 syntax error, not checked: invalid syntax")


def test_invalid_utf8_is_reported(torch_save_rule: type[Rule]) -> None:
    (line,) = run(b"save = 1\nx = '\xff'\n", torch_save_rule)
    assert line.startswith("2:6 QIG000 not valid utf-8: byte 0xff")


def test_pep263_declared_encoding_is_honoured(torch_save_rule: type[Rule]) -> None:
    source = "# -*- coding: latin-1 -*-\nname = 'café'\ntorch.save(basin, name)\n"
    assert run(source.encode("latin-1"), torch_save_rule) == ["3:1 QIG900 torch.save of a basin"]


def test_utf8_bom_is_accepted(torch_save_rule: type[Rule]) -> None:
    assert run(b"\xef\xbb\xbftorch.save(basin, p)\n", torch_save_rule) == [
        "1:1 QIG900 torch.save of a basin"
    ]


def test_oversized_file_is_reported_not_parsed(torch_save_rule: type[Rule]) -> None:
    (line,) = run("torch.save(b, p)\n" * 100, torch_save_rule, config=Config(max_file_size=100))
    assert "over the 100-byte limit" in line and line.startswith("1:1 QIG000")


def test_crashing_rule_keeps_other_findings(
    torch_save_rule: type[Rule], crashing_rule: type[Rule]
) -> None:
    result = check_source(
        "m.py", b"torch.save(basin, p)\n", Config(), [torch_save_rule, crashing_rule]
    )
    assert result.internal_error
    codes = sorted(f.code for f in result.findings)
    assert codes == ["QIG000", "QIG900"]
    (error,) = [f for f in result.findings if f.code == "QIG000"]
    assert "internal error in QIG901 (RuntimeError: boom" in error.message


def test_noqa_with_code_suppresses_that_code_only(torch_save_rule: type[Rule]) -> None:
    assert run("torch.save(b, p)  # noqa: QIG900\n", torch_save_rule) == []
    assert run("torch.save(b, p)  # noqa: QIG001, QIG900\n", torch_save_rule) == []
    assert run("torch.save(b, p)  # noqa:QIG001\n", torch_save_rule) != []


def test_bare_noqa_suppresses_unless_strict(torch_save_rule: type[Rule]) -> None:
    assert run("torch.save(b, p)  # noqa\n", torch_save_rule) == []
    strict = run("torch.save(b, p)  # noqa\n", torch_save_rule, config=Config(strict_noqa=True))
    assert [line.split()[1] for line in strict] == ["QIG000", "QIG900"]
    assert "bare `# noqa`" in strict[0]


def test_deeply_nested_source_does_not_crash(torch_save_rule: type[Rule]) -> None:
    source = "torch.save(" + "(" * 400 + "1" + ")" * 400 + ", p)\n"
    lines = run(source, torch_save_rule)
    assert lines and all(" QIG" in line for line in lines)
