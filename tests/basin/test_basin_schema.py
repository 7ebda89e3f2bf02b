"""The version 1 schema: a valid Draft 2020-12 schema that states the format's rules."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from qig_guard.basin import load_basin, validate_basin_file
from qig_guard.basin.schema import document_problems, parse_timestamp, schema

EXAMPLE = Path(__file__).parents[2] / "examples" / "basins" / "gary-a.basin.json"


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema_version": 1,
        "source_model": "Gary-A",
        "timestamp": "2025-11-24T12:34:56",
        "dim": 4,
        "physics_constants": {"kappa_eff": 64.2, "beta": 0.44},
        "provenance": {"extracted_from": "checkpoints/gary_a.pt"},
        "basin": [0.25, -0.5, 0.125, 1.0],
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


def test_schema_is_a_valid_versioned_draft_2020_12_schema() -> None:
    document = schema()
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"].endswith("/v1.schema.json")
    assert document["additionalProperties"] is False
    assert document["properties"]["schema_version"] == {"const": 1}
    assert set(document["required"]) == {
        "schema_version",
        "basin",
        "dim",
        "source_model",
        "timestamp",
        "physics_constants",
        "provenance",
    }


def test_shipped_example_is_valid() -> None:
    assert validate_basin_file(EXAMPLE) == []
    assert load_basin(EXAMPLE).dim == 64


def test_minimal_document_is_valid() -> None:
    assert document_problems(_document()) == []


@pytest.mark.parametrize(
    "timestamp",
    [
        "2025-11-24T12:34:56",  # the spec's example: no offset
        "2025-11-24T12:34:56.123456",
        "2025-11-24T12:34:56.123",
        "2025-11-24T12:34:56+00:00",
        "2025-11-24T12:34:56.123456-05:30",
        "2025-11-24T12:34:56Z",  # JavaScript's toISOString() without milliseconds
        "2025-11-24T12:34:56.789Z",  # toISOString()
        "2025-11-24t12:34:56z",  # RFC 3339 allows lower case
        "2025-11-24T12:34:56.1+01:00",
        "2025-11-24T12:34:56.123456789Z",  # nanoseconds (Go, Java)
        "2025-11-24T12:34:56+0000",  # strftime's %z
        "2025-11-24T12:34:56+05:30:15.250000",  # isoformat() of an odd offset
    ],
)
def test_real_writers_timestamps_are_valid(timestamp: str) -> None:
    assert document_problems(_document(timestamp=timestamp)) == []


@pytest.mark.parametrize(
    "timestamp",
    [
        "2025-11-24",
        "24/11/2025 12:34",
        "2025-02-30T12:00:00",
        "2025-11-24T12:34:56.Z",
        "2025-11-24T12:34:56+1",
        "2025-11-24T25:00:00Z",
        "2025-11-24T12:34:56Z\n",
        "2025-11-24 12:34:56",
    ],
)
def test_other_timestamps_are_rejected(timestamp: str) -> None:
    (problem,) = document_problems(_document(timestamp=timestamp))
    assert problem.code == "QIG100" and problem.path == ("timestamp",)


@pytest.mark.parametrize(
    ("changes", "code", "path"),
    [
        ({"schema_version": 2}, "QIG100", ("schema_version",)),
        ({"extra": 1}, "QIG100", ()),
        ({"basin": [0.25, -0.5, 0.125]}, "QIG100", ("basin",)),
        ({"basin": [0.25, "x", 0.125, 1.0]}, "QIG100", ("basin", 1)),
        ({"basin": [0.25, True, 0.125, 1.0]}, "QIG100", ("basin", 1)),
        ({"basin": [0.25, float("nan"), 0.125, 1.0]}, "QIG102", ("basin", 1)),
        ({"basin": [0.25, float("-inf"), 0.125, 1.0]}, "QIG102", ("basin", 1)),
        ({"dim": 4.5}, "QIG100", ("dim",)),
        ({"source_model": ""}, "QIG100", ("source_model",)),
        ({"physics_constants": {"kappa_eff": 64.2}}, "QIG100", ("physics_constants",)),
        ({"provenance": None}, "QIG103", ()),
        ({"provenance": {"extracted_from": ""}}, "QIG103", ("provenance", "extracted_from")),
        ({"provenance": "checkpoints/gary_a.pt"}, "QIG103", ("provenance",)),
        (
            {"provenance": {"extracted_from": "a.pt", "checkpoint_sha256": "abc"}},
            "QIG103",
            ("provenance", "checkpoint_sha256"),
        ),
        ({"fisher_diag": [1.0, 1.0, 1.0, 1.0]}, "QIG100", ()),
        ({"fisher_estimator": "empirical", "fisher_samples": 8}, "QIG100", ()),
        (
            {"fisher_diag": [1.0, 0.0, 1.0, 1.0], "fisher_estimator": "true", "fisher_samples": 8},
            "QIG100",
            ("fisher_diag", 1),
        ),
        (
            {"fisher_diag": [1.0, 1.0], "fisher_estimator": "true_mc", "fisher_samples": 8},
            "QIG100",
            ("fisher_diag",),
        ),
        (
            {"fisher_diag": [1.0] * 4, "fisher_estimator": "kfac", "fisher_samples": 8},
            "QIG100",
            ("fisher_estimator",),
        ),
        ({"training_steps": -1}, "QIG100", ("training_steps",)),
    ],
)
def test_each_rule_is_reported_at_its_path(
    changes: dict[str, Any], code: str, path: tuple[str | int, ...]
) -> None:
    problems = document_problems(_document(**changes))
    assert {(p.code, p.path) for p in problems} == {(code, path)}


def test_a_stack_of_vectors_is_one_clear_problem_not_one_per_entry() -> None:
    (problem,) = document_problems(_document(basin=[[0.25, -0.5], [0.125, 1.0]]))
    assert problem.path == ("basin",)
    assert "stack of 2 vectors" in problem.message


def test_integral_float_dim_is_accepted_as_json_schema_says() -> None:
    assert document_problems(_document(dim=4.0)) == []


def test_non_object_document_is_a_schema_problem() -> None:
    assert [p.code for p in document_problems(json.loads("[1, 2]"))] == ["QIG100"]


def test_timestamps_are_read_to_the_instant_they_name() -> None:
    utc = datetime(2025, 11, 24, 12, 34, 56, 123456, tzinfo=timezone.utc)
    assert parse_timestamp("2025-11-24T12:34:56.123456789Z") == utc
    assert parse_timestamp("2025-11-24T13:34:56.1234564+0100") == utc
    assert parse_timestamp("2025-11-24T12:34:56.5") == datetime(2025, 11, 24, 12, 34, 56, 500000)


_PATTERN = re.compile(schema()["properties"]["timestamp"]["pattern"])
_pieces = st.sampled_from(["2025-11-24", "2024-02-29", "2025-02-29", "99-1-1", ""])
_times = st.sampled_from(["T12:34:56", "t23:59:59", "T24:00:00", " 12:34:56", "T1:2:3", ""])
_fractions = st.from_regex(r"\A(\.[0-9]{0,12})?\Z")
_offsets = st.sampled_from(["", "Z", "z", "+00:00", "-0530", "+05:30:15.250000", "+5", "+25:00"])


@given(_pieces, _times, _fractions, _offsets)
def test_schema_pattern_and_python_check_agree(
    date: str, time: str, fraction: str, offset: str
) -> None:
    """Python reads exactly what the pattern accepts that is a real date, time and offset,
    and a timestamp is valid in a document exactly when Python reads it."""
    text = date + time + fraction + offset
    try:
        parse_timestamp(text)
        parsed = True
    except ValueError:
        parsed = False
    problems = document_problems(_document(timestamp=text))
    assert parsed == (problems == [])
    if not _PATTERN.fullmatch(text):
        assert not parsed
