"""Reading and writing basin files: strict parsing, exact round trips, atomic writes."""

from __future__ import annotations

import json
import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qig_guard
from qig_guard.basin import (
    BasinFileError,
    basin_settings,
    load_basin,
    save_basin,
    validate_basin_file,
)
from qig_guard.basin.strictjson import MAX_DEPTH, JsonReadError, parse_json, read_json
from qig_guard.config import Config

DATA = Path(__file__).parent / "data"
finite = st.floats(allow_nan=False, allow_infinity=False)


def _save(path: Path, dim: int = 64, **extra: Any) -> Path:
    basin = [math.sin(i) / 3 for i in range(dim)]
    return save_basin(
        path, basin, source_model="Gary-A", extracted_from="ckpt.pt", expected_dim=dim, **extra
    )


@pytest.mark.parametrize(
    ("data", "message", "line", "column"),
    [
        (b'{"a": NaN}', None, None, None),
        (b'{\n  "a": 1,\n  "a": 2\n}', "duplicate key 'a' in $", 3, 3),
        (b'{"b": {"a": 1, "a": 1}}', "duplicate key 'a' in $.b", 1, 16),
        (b'{\n  "basin": [0.1,\n', "ends early", 3, 1),
        (b"", "ends early", 1, 1),
        (b'{"a": "caf\xe9"}', "not UTF-8: byte 0xe9", 1, 11),
        (b"\xef\xbb\xbf{}", "not valid JSON", 1, 1),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper", 1, 1),
        (b'{"a": ' + b"1" * 5000 + b"}", "not valid JSON", 1, 1),
    ],
)
def test_strict_parsing(
    data: bytes, message: str | None, line: int | None, column: int | None
) -> None:
    if message is None:  # non-finite tokens parse; the validator reports where they are
        assert math.isnan(parse_json(data).value["a"])
        return
    with pytest.raises(JsonReadError) as caught:
        parse_json(data)
    assert message in caught.value.message
    assert (caught.value.line, caught.value.column) == (line, column)


def test_nesting_inside_strings_does_not_count_as_depth() -> None:
    text = json.dumps({"note": "[" * 500})
    assert parse_json(text.encode()).value == {"note": "[" * 500}


def test_oversized_files_are_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"[" + b"0," * 5000 + b"0]")
    with pytest.raises(JsonReadError, match="larger than 4096 bytes: not parsed"):
        read_json(path, 4096)


def test_save_then_load_keeps_every_field(tmp_path: Path) -> None:
    fisher = [1.0 + i / 10 for i in range(64)]
    path = _save(
        tmp_path / "gary.json",
        physics_constants={"kappa_eff": 64.0, "beta": 0.45},
        fisher_diag=fisher,
        fisher_estimator="true_mc",
        fisher_samples=256,
        checkpoint_sha256="0" * 64,
        training_steps=50_000,
        final_Phi=0.73,
        regime="geometric",
    )
    loaded = load_basin(path)
    assert loaded.basin == tuple(math.sin(i) / 3 for i in range(64))
    assert loaded.fisher_diag == tuple(fisher)
    assert loaded.dim == 64 and loaded.source_model == "Gary-A"
    assert dict(loaded.physics_constants) == {"kappa_eff": 64.0, "beta": 0.45}
    meta = loaded.metadata
    assert meta["provenance"] == {
        "extracted_from": "ckpt.pt",
        "checkpoint_sha256": "0" * 64,
        "tool": "qig-guard",
        "tool_version": qig_guard.__version__,
    }
    assert meta["timestamp"].endswith("+00:00")
    assert (meta["training_steps"], meta["final_Phi"], meta["regime"]) == (
        50_000,
        0.73,
        "geometric",
    )
    assert (meta["fisher_estimator"], meta["fisher_samples"]) == ("true_mc", 256)


def test_written_file_is_stable_indented_json_with_trailing_newline(tmp_path: Path) -> None:
    text = _save(tmp_path / "gary.json").read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n  "schema_version": 1,\n')
    assert list(json.loads(text)) == [
        "schema_version",
        "source_model",
        "timestamp",
        "dim",
        "physics_constants",
        "provenance",
        "basin",
    ]


def test_default_physics_constants(tmp_path: Path) -> None:
    constants = load_basin(_save(tmp_path / "gary.json")).physics_constants
    assert dict(constants) == {"kappa_eff": 64.21, "beta": 0.44}


@given(
    basin=st.lists(finite, min_size=1, max_size=80),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_whatever_the_writer_writes_the_reader_returns_bit_exactly(
    tmp_path_factory: pytest.TempPathFactory, basin: list[float], data: st.DataObject
) -> None:
    fisher = data.draw(
        st.none()
        | st.lists(
            st.floats(min_value=5e-324, allow_infinity=False),
            min_size=len(basin),
            max_size=len(basin),
        )
    )
    extra: dict[str, Any] = {}
    if fisher is not None:
        extra = {"fisher_diag": fisher, "fisher_estimator": "empirical", "fisher_samples": 1}
    model = data.draw(st.text(min_size=1, max_size=20))
    path = tmp_path_factory.mktemp("rt") / "basin.json"
    save_basin(path, basin, source_model=model, extracted_from="x", expected_dim=None, **extra)
    loaded = load_basin(path)
    pack = struct.Struct("<d").pack
    assert [pack(v) for v in loaded.basin] == [pack(v) for v in basin]  # -0.0 stays -0.0
    if fisher is not None:
        assert loaded.fisher_diag is not None
        assert [pack(v) for v in loaded.fisher_diag] == [pack(v) for v in fisher]
    assert loaded.source_model == model
    findings = validate_basin_file(path, basin_settings(Config(basin={"dim": len(basin)})))
    assert {finding.code for finding in findings} <= {"QIG101"}  # size only


@given(st.lists(st.floats(-1, 1), min_size=64, max_size=64))
@settings(max_examples=25, deadline=None)
def test_a_standard_basin_with_metadata_and_fisher_fits_in_4_kib(
    tmp_path_factory: pytest.TempPathFactory, basin: list[float]
) -> None:
    path = tmp_path_factory.mktemp("size") / "basin.json"
    _save(
        path,
        checkpoint_sha256="f" * 64,
        training_steps=123_456,
        final_Phi=0.7312,
        regime="geometric",
        fisher_diag=[abs(v) + 1e-3 for v in basin],
        fisher_estimator="empirical",
        fisher_samples=4096,
    )
    assert path.stat().st_size <= 4096
    assert validate_basin_file(path) == []


@pytest.mark.parametrize(
    ("basin", "extra", "message"),
    [
        ([0.1, float("nan")], {}, r"\$\.basin\[1\]: is NaN"),
        ([0.1, float("inf")], {}, r"\$\.basin\[1\]: is infinite"),
        ([[0.1, 0.2]], {}, r"basin\[0\]: expected a number"),
        ([0.1, "0.2"], {}, r"basin\[1\]: expected a number"),
        ([], {}, r"\$\.basin: \[\] should be non-empty"),
        ([0.1], {"fisher_diag": [1.0]}, "dependency"),
        (
            [0.1],
            {"fisher_diag": [-1.0], "fisher_estimator": "true", "fisher_samples": 3},
            "minimum",
        ),
        ([0.1], {"checkpoint_sha256": "not-a-hash"}, "checkpoint_sha256"),
        ([0.1], {"physics_constants": {"kappa_eff": 64.2}}, "'beta' is a required property"),
    ],
)
def test_save_refuses_invalid_basins_and_writes_nothing(
    tmp_path: Path, basin: list[Any], extra: dict[str, Any], message: str
) -> None:
    path = tmp_path / "basin.json"
    with pytest.raises(BasinFileError, match=message):
        save_basin(path, basin, source_model="m", extracted_from="x", **extra)
    assert list(tmp_path.iterdir()) == []


def test_save_replaces_atomically_and_keeps_the_file_mode(tmp_path: Path) -> None:
    path = _save(tmp_path / "basin.json")
    os.chmod(path, 0o640)
    before = path.read_bytes()
    with pytest.raises(BasinFileError):
        save_basin(path, [float("nan")], source_model="m", extracted_from="x")
    assert path.read_bytes() == before
    _save(path, dim=8)
    assert load_basin(path).dim == 8
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["basin.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"basin": [0.1], "dim": 1, "schema_version": 1, "basin": [0.2]}', "duplicate key"),
        (b'{"schema_version": 1, "basin": [NaN]}', "is NaN"),
        (b'{"schema_version": 1, "basin": [1e400]}', "is infinite"),
        (b"\x80\x04\x95\x00", "not UTF-8"),
    ],
)
def test_load_rejects_what_is_not_a_strict_basin_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "basin.json"
    path.write_bytes(content)
    with pytest.raises(BasinFileError, match=message):
        load_basin(path)


def test_load_never_unpickles(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "basin.json"
    path.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(BasinFileError):
        load_basin(path)
    assert not marker.exists()


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.marker),))


def test_load_names_legacy_shapes(tmp_path: Path) -> None:
    with pytest.raises(BasinFileError, match=r"sync packet.*qig-guard basin convert"):
        load_basin(DATA / "sync_packet.json")
    with pytest.raises(BasinFileError, match=r"identity descriptor.*no basin coordinate vector"):
        load_basin(DATA / "identity_descriptor.json")


def test_load_refuses_files_over_its_cap(tmp_path: Path) -> None:
    path = _save(tmp_path / "basin.json", dim=512, max_size=64 * 1024)
    with pytest.raises(BasinFileError, match="larger than 4096 bytes"):
        load_basin(path, max_bytes=4096)
    assert load_basin(path).dim == 512


def test_save_checks_the_expected_dimension(tmp_path: Path) -> None:
    path = tmp_path / "basin.json"
    with pytest.raises(BasinFileError, match=r"\$\.dim: is 1, but basins here are 64-dimensional"):
        save_basin(path, [0.0], source_model="m", extracted_from="x")
    assert not path.exists()
    with pytest.raises(BasinFileError, match="is 64, but basins here are 32-dimensional"):
        save_basin(path, [0.0] * 64, source_model="m", extracted_from="x", expected_dim=32)
    saved = save_basin(path, [0.5] * 32, source_model="m", extracted_from="x", expected_dim=32)
    assert load_basin(saved).dim == 32


def test_load_names_a_document_that_is_no_basin(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text('{"attractors": []}')
    with pytest.raises(BasinFileError, match="not a basin file: it has no `basin` vector"):
        load_basin(path)


def test_save_basin_refuses_what_validate_would_reject(tmp_path: Path) -> None:
    target = tmp_path / "huge.json"
    with pytest.raises(BasinFileError, match=r"over the 4096-byte limit .* not written"):
        save_basin(
            target, [0.5] * 100_000, source_model="A", extracted_from="a.pt", expected_dim=None
        )
    assert not target.exists()
    small = save_basin(target, [0.5] * 64, source_model="A", extracted_from="a.pt", max_size=4096)
    assert validate_basin_file(small) == []
