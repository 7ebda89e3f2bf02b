"""Converting legacy basin shapes: nothing invented, everything mappable kept, the rest reported."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from qig_guard.basin import load_basin, validate_basin_file
from qig_guard.basin.legacy import LegacyKind, convert, detect, normalise_timestamp
from qig_guard.basin.schema import document_problems

DATA = Path(__file__).parent / "data"


def _load(name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((DATA / name).read_text())
    return document


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sync_packet.json", LegacyKind.SYNC_PACKET),
        ("identity_descriptor.json", LegacyKind.IDENTITY_DESCRIPTOR),
        ("pre_v1_template.json", LegacyKind.PRE_V1),
        ("pre_v1_spec_example.json", LegacyKind.PRE_V1),
    ],
)
def test_detects_each_legacy_shape(name: str, kind: LegacyKind) -> None:
    assert detect(_load(name)) is kind


@pytest.mark.parametrize("document", [{"schema_version": 1, "basin": []}, {"a": 1}, [], "basin"])
def test_other_documents_are_not_legacy(document: object) -> None:
    assert detect(document) is None


def test_sync_packet_keeps_identity_and_drops_search_history() -> None:
    packet = _load("sync_packet.json")
    result = convert(packet, path="old/ocean.json", sha256="ab" * 32)
    assert result.error is None and result.document is not None
    document = result.document
    assert document_problems(document) == []
    assert document["basin"] == packet["basinCoordinates"]
    assert document["dim"] == 64
    assert document["source_model"] == "ocean-prime"
    assert document["physics_constants"] == {"kappa_eff": 63.87, "beta": 0.43}
    assert (document["final_Phi"], document["regime"]) == (0.7312, "geometric")
    assert document["timestamp"] == "2025-11-24T12:34:56.789000+00:00"
    assert document["provenance"] == {
        "extracted_from": "old/ocean.json",
        "converted_from": {
            "format": "sync-packet",
            "path": "old/ocean.json",
            "sha256": "ab" * 32,
            "version": "2.1.0",
            "timestamp": "2025-11-24T12:34:56.789Z",
        },
    }
    assert {"basinReference", "exploredRegions", "patterns", "searchStats"} <= set(result.dropped)
    assert "consciousness.tacking" in result.dropped
    assert "consciousness.phi" not in result.dropped
    assert result.absent == ["training_steps", "fisher_diag"]


def test_sync_packet_without_kappa_is_reported_missing_not_invented() -> None:
    packet = _load("sync_packet.json")
    consciousness = packet["consciousness"]
    assert isinstance(consciousness, dict)
    del consciousness["kappaEff"]
    result = convert(packet, path="p.json", sha256="0" * 64)
    assert result.document is None
    assert result.missing == ["physics_constants.kappa_eff"]
    assert result.error is not None and "--set" in result.error
    supplied = convert(
        packet, path="p.json", sha256="0" * 64, supplied={"physics_constants.kappa_eff": 64.0}
    )
    assert supplied.document is not None
    assert supplied.document["physics_constants"] == {"kappa_eff": 64.0, "beta": 0.43}
    provenance = supplied.document["provenance"]
    assert provenance["converted_from"]["supplied"] == ["physics_constants.kappa_eff"]


def test_supplied_values_never_override_the_file() -> None:
    result = convert(
        _load("sync_packet.json"), path="p", sha256="0" * 64, supplied={"source_model": "other"}
    )
    assert result.document is not None and result.document["source_model"] == "ocean-prime"
    assert "supplied" not in result.document["provenance"]["converted_from"]


def test_identity_descriptor_cannot_be_converted_and_says_why() -> None:
    result = convert(_load("identity_descriptor.json"), path="id.json", sha256="0" * 64)
    assert result.document is None
    assert result.error is not None
    assert "holds no basin coordinate vector" in result.error
    assert "cannot be derived" in result.error


def test_pre_v1_spec_example_flattens_its_single_row_and_needs_provenance() -> None:
    example = _load("pre_v1_spec_example.json")
    result = convert(example, path="old.json", sha256="0" * 64)
    assert result.missing == ["provenance.extracted_from"]
    result = convert(
        example, path="old.json", sha256="0" * 64, supplied={"extracted_from": "gary_a.pt"}
    )
    assert result.document is not None
    assert document_problems(result.document) == []
    basin = example["basin"]
    assert isinstance(basin, list)
    assert result.document["basin"] == basin[0]
    assert result.document["training_steps"] == 50000


def test_pre_v1_stack_of_several_vectors_is_not_flattened() -> None:
    example = _load("pre_v1_spec_example.json")
    example["basin"] = [[0.1] * 64, [0.2] * 64]
    result = convert(example, path="old.json", sha256="0" * 64, supplied={"extracted_from": "x"})
    assert result.document is not None
    (problem,) = document_problems(result.document)
    assert "stack of 2 vectors" in problem.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-11-24T12:34:56", "2025-11-24T12:34:56"),
        ("2025-11-24T12:34:56Z", "2025-11-24T12:34:56+00:00"),
        (1732451696789, "2024-11-24T12:34:56.789000+00:00"),
        (1732451696, "2024-11-24T12:34:56+00:00"),
        ("yesterday", None),
        (True, None),
        (float("nan"), None),
    ],
)
def test_timestamps_are_normalised_or_refused(value: object, expected: str | None) -> None:
    assert normalise_timestamp(value) == expected


def _cli(*args: str) -> int:
    from qig_guard.cli import main

    return main(["basin", *args])


def test_convert_command_writes_a_valid_file_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = DATA / "sync_packet.json"
    new = tmp_path / "ocean.basin.json"
    assert _cli("convert", str(old), "-o", str(new)) == 0
    out = capsys.readouterr().out
    assert "legacy cross-repository sync packet" in out
    assert "dropped: basinReference" in out and f"wrote {new}" in out
    assert validate_basin_file(new) == []
    sha = load_basin(new).metadata["provenance"]["converted_from"]["sha256"]
    assert sha == hashlib.sha256(old.read_bytes()).hexdigest()
    assert _cli("convert", str(old), "-o", str(new)) == 2  # exists: needs --force
    assert _cli("convert", str(old), "-o", str(new), "--force") == 0


def test_convert_reports_frozen_fact_failures_of_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packet = _load("sync_packet.json")
    packet["beta"] = 0.9
    old = tmp_path / "packet.json"
    old.write_text(json.dumps(packet))
    new = tmp_path / "new.json"
    assert _cli("convert", str(old), "-o", str(new)) == 1
    assert "QIG104" in capsys.readouterr().out and new.exists()


def test_convert_refuses_descriptors_and_incomplete_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new.json"
    assert _cli("convert", str(DATA / "identity_descriptor.json"), "-o", str(new)) == 1
    assert "holds no basin coordinate vector" in capsys.readouterr().out
    assert _cli("convert", str(DATA / "pre_v1_template.json"), "-o", str(new)) == 1
    assert "lacks source_model, physics_constants.kappa_eff" in capsys.readouterr().out
    assert not new.exists()
    supplied = [
        "--set=source_model=Gary-A",
        "--set=physics_constants.kappa_eff=64.3",
        "--set=physics_constants.beta=0.44",
    ]
    assert _cli("convert", str(DATA / "pre_v1_template.json"), "-o", str(new), *supplied) == 0
    assert load_basin(new).metadata["provenance"]["converted_from"]["supplied"] == [
        "source_model",
        "physics_constants.kappa_eff",
        "physics_constants.beta",
    ]


@pytest.mark.parametrize("assignment", ["dim=3", "physics_constants.beta=nan", "timestamp=soon"])
def test_convert_rejects_bad_assignments(tmp_path: Path, assignment: str) -> None:
    with pytest.raises(SystemExit) as caught:
        _cli("convert", str(DATA / "pre_v1_template.json"), "-o", "x.json", "--set", assignment)
    assert caught.value.code == 2


def test_set_accepts_the_dotted_names_the_messages_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _load("pre_v1_template.json")
    del document["extracted_from"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    new = tmp_path / "new.json"
    supplied = ["--set=source_model=Gary-A", "--set=physics_constants.kappa_eff=64.3"]
    supplied.append("--set=physics_constants.beta=0.44")
    assert _cli("convert", str(old), "-o", str(new), *supplied) == 1
    assert "lacks provenance.extracted_from;" in capsys.readouterr().out
    named = "--set=provenance.extracted_from=checkpoints/gary.pt"
    assert _cli("convert", str(old), "-o", str(new), *supplied, named) == 0
    provenance = load_basin(new).metadata["provenance"]
    assert provenance["extracted_from"] == "checkpoints/gary.pt"
    assert provenance["converted_from"]["supplied"][-1] == "provenance.extracted_from"
    alias = "--set=extracted_from=checkpoints/gary.pt"  # the short name still works
    assert _cli("convert", str(old), "-o", str(new), "--force", *supplied, alias) == 0
    assert load_basin(new).metadata["provenance"]["extracted_from"] == "checkpoints/gary.pt"


def test_convert_refuses_a_result_of_the_wrong_dimension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packet = _load("sync_packet.json")
    packet["basinCoordinates"] = [0.0]
    old = tmp_path / "packet.json"
    old.write_text(json.dumps(packet))
    new = tmp_path / "new.json"
    assert _cli("convert", str(old), "-o", str(new)) == 1
    out = capsys.readouterr().out
    assert "$.dim: is 1, but basins here are 64-dimensional" in out
    assert not new.exists()
    (tmp_path / "pyproject.toml").write_text("[tool.qig-guard.basin]\ndim = 1\n")
    config = ["--config", str(tmp_path / "pyproject.toml")]
    assert _cli("convert", str(old), "-o", str(new), *config) == 0


def test_convert_says_when_a_file_is_no_basin_at_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "attractors.json"
    old.write_text('{"attractors": [{"name": "a", "center": [0.1, 0.2]}]}')
    assert _cli("convert", str(old), "-o", str(tmp_path / "new.json")) == 1
    assert "not a basin file: it has no `basin` vector" in capsys.readouterr().out
