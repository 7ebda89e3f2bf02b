"""validate_basin_file: findings with codes, JSON paths and file positions; its configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qig_guard.basin import basin_files, basin_settings, save_basin, validate_basin_file
from qig_guard.basin.settings import BasinSettings
from qig_guard.config import Config, ConfigError, load_pyproject, parse_table
from qig_guard.engine.findings import Finding

DATA = Path(__file__).parent / "data"


def _basin(path: Path, **extra: Any) -> Path:
    basin = [round(0.01 * i - 0.3, 2) for i in range(64)]
    return save_basin(path, basin, source_model="Gary-A", extracted_from="ckpt.pt", **extra)


def _edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def _codes(findings: list[Finding]) -> list[str]:
    return [finding.code for finding in findings]


def _config(tmp_path: Path, table: str) -> Config:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.qig-guard]\n{table}\n")
    return load_pyproject(pyproject)


def test_valid_file_has_no_findings(tmp_path: Path) -> None:
    assert validate_basin_file(_basin(tmp_path / "a.json")) == []


def test_findings_point_at_the_json_token(tmp_path: Path) -> None:
    path = _basin(tmp_path / "a.json")
    lines = path.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith('  "basin"')) + 2
    _edit(path, "-0.29", '"x"')  # basin[1], first row of numbers
    _edit(path, '"dim": 64,', '"dim": 64,\n  "colour": "blue",')
    (extra, schema_type) = sorted(validate_basin_file(path), key=lambda f: f.line)
    assert (extra.code, extra.line, extra.column) == ("QIG100", 6, 13)
    assert extra.message == "$: Additional properties are not allowed ('colour' was unexpected)"
    assert (schema_type.line, schema_type.column) == (row + 1, 11)
    assert schema_type.message == "$.basin[1]: 'x' is not of type 'number'"


def test_non_finite_values_are_each_reported_where_they_are(tmp_path: Path) -> None:
    path = _edit(_basin(tmp_path / "a.json"), "-0.29,", "NaN,")
    _edit(path, "-0.28,", "-Infinity,")
    _edit(path, "-0.27,", "1e999,")
    findings = validate_basin_file(path)
    assert _codes(findings) == ["QIG102"] * 3
    assert [f.message.split(":")[0] for f in findings] == [
        "$.basin[1]",
        "$.basin[2]",
        "$.basin[3]",
    ]
    assert len({(f.line, f.column) for f in findings}) == 3


@pytest.mark.parametrize(
    ("old", "new", "code", "fragment"),
    [
        ('"extracted_from": "ckpt.pt",\n', "", "QIG103", "'extracted_from' is a required"),
        ('"dim": 64', '"dim": 65', "QIG100", "$.basin: has 64 entries but dim is 65"),
        ('"beta": 0.44', '"beta": 0.5', "QIG104", "beta = 0.5 is outside the frozen facts"),
        ('"schema_version": 1', '"schema_version": "1"', "QIG100", "$.schema_version"),
    ],
)
def test_each_kind_of_problem(tmp_path: Path, old: str, new: str, code: str, fragment: str) -> None:
    findings = validate_basin_file(_edit(_basin(tmp_path / "a.json"), old, new))
    assert _codes(findings) == [code]
    assert fragment in findings[0].message


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("sync_packet.json", "legacy cross-repository sync packet"),
        ("pre_v1_template.json", "pre-version-1 basin file"),
        ("pre_v1_spec_example.json", "pre-version-1 basin file"),
        ("identity_descriptor.json", "holds no basin coordinate vector"),
    ],
)
def test_legacy_files_are_named_not_dumped_as_schema_noise(name: str, fragment: str) -> None:
    (finding,) = validate_basin_file(DATA / name)
    assert finding.code == "QIG105" and fragment in finding.message


def test_malformed_files(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.json"
    truncated.write_text(_basin(tmp_path / "a.json").read_text()[:300])
    (finding,) = validate_basin_file(truncated)
    assert finding.code == "QIG106" and "truncated" in finding.message
    missing = validate_basin_file(tmp_path / "absent.json")
    assert _codes(missing) == ["QIG106"]


def test_size_range_is_configurable(tmp_path: Path) -> None:
    path = _basin(tmp_path / "a.json")
    size = path.stat().st_size
    assert validate_basin_file(path, BasinSettings(max_size=size)) == []
    (too_big,) = validate_basin_file(path, BasinSettings(max_size=size - 1))
    assert too_big.code == "QIG101" and f"at most {size - 1} bytes" in too_big.message
    (too_small,) = validate_basin_file(path, BasinSettings(min_size=size + 1))
    assert "tool.qig-guard.basin.min-size" in too_small.message
    config = _config(tmp_path, f"basin = {{ min-size = 10, max-size = {size - 1} }}")
    assert _codes(validate_basin_file(path, config)) == ["QIG101"]


def test_oversized_file_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(b"[" + b"NaN," * 400_000 + b"0]")
    (finding,) = validate_basin_file(path)
    assert finding.code == "QIG101" and "too large to parse" in finding.message


def test_frozen_facts_from_the_pyproject_table(tmp_path: Path) -> None:
    path = _basin(tmp_path / "a.json", physics_constants={"kappa_eff": 58.0, "beta": 0.44})
    assert _codes(validate_basin_file(path)) == ["QIG104"]
    config = _config(
        tmp_path,
        "[tool.qig-guard.frozen-facts]\n"
        "kappa_eff = { value = 58.1, tolerance = 0.2 }\n"
        "kappa_star = { value = 64.0, tolerance = 1.0 }\n",
    )
    (finding,) = validate_basin_file(path, config)
    assert finding.message == (
        "$.physics_constants: no kappa_star; the frozen facts fix it at 64.0 ± 1.0 "
        "(pyproject.toml [tool.qig-guard.frozen-facts])"
    )


def test_frozen_facts_tolerance_is_inclusive(tmp_path: Path) -> None:
    settings = BasinSettings()
    edge = _basin(tmp_path / "a.json", physics_constants={"kappa_eff": 64.21 + 0.92, "beta": 0.4})
    assert validate_basin_file(edge, settings) == []
    outside = _basin(tmp_path / "b.json", physics_constants={"kappa_eff": 65.14, "beta": 0.44})
    (finding,) = validate_basin_file(outside, settings)
    assert "kappa_eff = 65.14 is outside the frozen facts: expected 64.21 ± 0.92" in finding.message


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_frozen_facts_from_a_file(tmp_path: Path, suffix: str) -> None:
    facts = tmp_path / "physics" / f"FROZEN_FACTS{suffix}"
    facts.parent.mkdir()
    if suffix == ".json":
        facts.write_text(json.dumps({"beta": {"value": 0.5, "tolerance": 0.01}}))
    else:
        facts.write_text("[beta]\nvalue = 0.5\ntolerance = 0.01\n")
    config = _config(tmp_path, f'frozen-facts = "physics/FROZEN_FACTS{suffix}"')
    (finding,) = validate_basin_file(_basin(tmp_path / "a.json"), config)
    assert finding.code == "QIG104"
    assert f"(frozen facts file {facts})" in finding.message


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("basin = { max-size = -1 }", "tool.qig-guard.basin.max-size"),
        ("basin = { max-size = 10, min-size = 20 }", "tool.qig-guard.basin.min-size"),
        ("basin = { maxsize = 10 }", "tool.qig-guard.basin.maxsize"),
        ("basin = { files = [] }", "tool.qig-guard.basin.files"),
        ("basin = { dim = 0 }", "tool.qig-guard.basin.dim"),
        ("basin = { dim = 64.0 }", "tool.qig-guard.basin.dim"),
        (
            "frozen-facts = { beta = { value = 0.44 } }",
            "tool.qig-guard.frozen-facts.beta.tolerance",
        ),
        (
            "frozen-facts = { beta = { value = 0.44, tolerance = -1 } }",
            "tool.qig-guard.frozen-facts.beta.tolerance",
        ),
        (
            "frozen-facts = { beta = { value = 'x', tolerance = 1 } }",
            "tool.qig-guard.frozen-facts.beta.value",
        ),
        ("frozen-facts = { beta = 0.44 }", "tool.qig-guard.frozen-facts.beta"),
        ('frozen-facts = "missing.toml"', "tool.qig-guard.frozen-facts"),
    ],
)
def test_configuration_errors_name_the_key(tmp_path: Path, table: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        basin_settings(_config(tmp_path, table))
    assert caught.value.key == key


def test_folders_are_walked_with_globs_and_excludes(tmp_path: Path) -> None:
    for name in (
        "basins/gary.json",
        "basins/legacy/ocean.json",
        "models/basin/2025/gary.json",
        "run/gary_basin.json",
        "run/metrics.json",
        "data/x_basin.json",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "basin.json").write_text("{}")
    config = parse_table({"exclude": ["data/**"]}, source=tmp_path / "pyproject.toml")
    found = basin_files([tmp_path], basin_settings(config))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in found) == [
        "basins/gary.json",
        "basins/legacy/ocean.json",
        "models/basin/2025/gary.json",
        "run/gary_basin.json",
    ]
    explicit = tmp_path / "run" / "metrics.json"
    assert basin_files([explicit], basin_settings(config)) == [explicit]


def test_a_config_object_and_none_are_accepted(tmp_path: Path) -> None:
    path = _basin(tmp_path / "a.json")
    assert validate_basin_file(path, Config()) == validate_basin_file(path, None) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            '{"attractors": [{"name": "a", "center": [0.1]}], "version": 2, "kappa": "x"}',
            "it has no `basin` vector, no `schema_version` and no legacy basin shape "
            "(top-level keys: attractors, version, kappa)",
        ),
        ("[0.1, 0.2]", "the document is an array, not a JSON object"),
        ("{}", "(top-level keys: none)"),
    ],
)
def test_a_json_document_that_is_no_basin_gets_one_finding(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "attractor_catalogue.json"
    path.write_text(text)
    (finding,) = validate_basin_file(path)
    assert (finding.code, finding.line, finding.column) == ("QIG100", 1, 1)
    assert finding.message.startswith("not a basin file: ") and reason in finding.message


def test_a_broken_basin_file_is_still_checked_in_detail(tmp_path: Path) -> None:
    path = _edit(_basin(tmp_path / "a.json"), '"source_model": "Gary-A",\n', "")
    (finding,) = validate_basin_file(path)
    assert finding.message == "$: 'source_model' is a required property"


def test_the_dimension_must_be_the_expected_one(tmp_path: Path) -> None:
    path = _basin(tmp_path / "a.json")
    (finding,) = validate_basin_file(path, basin_settings(Config(basin={"dim": 32})))
    assert finding.code == "QIG100"
    assert finding.message.startswith("$.dim: is 64, but basins here are 32-dimensional")
    assert (finding.line, finding.column) == (5, 10)
