"""QIG011 basin-missing-provenance on realistic research code."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.basin import save_basin
from qig_guard.basin.schema import document_problems
from qig_guard.config import Config
from qig_guard.engine.fixer import fix_source
from qig_guard.facts.vocabulary import provenance_keys
from qig_guard.rules.base import Rule
from qig_guard.rules.qig011_basin_missing_provenance import BasinMissingProvenance


def messages(source: str) -> list[tuple[int, str]]:
    text = textwrap.dedent(source)
    result = check_source("export.py", text.encode(), Config(), [BasinMissingProvenance])
    assert not result.internal_error, result.findings
    return [(f.line, f.message) for f in result.findings if f.code == "QIG011"]


def kinds(source: str) -> list[str]:
    found = []
    for _, message in messages(source):
        found.append("nan" if "allow_nan" in message else "provenance")
    return sorted(found)


MISSING_PROVENANCE = {
    "spec_template_without_source_model": """
        import json
        from datetime import datetime

        def extract_basin_from_checkpoint(checkpoint_path, output_path):
            basin = load(checkpoint_path)
            basin_data = {
                "basin": basin.cpu().numpy().tolist(),
                "dim": basin.shape[0],
                "extracted_from": checkpoint_path,
                "timestamp": datetime.now().isoformat(),
            }
            with open(output_path, "w") as f:
                json.dump(basin_data, f, indent=2, allow_nan=False)
    """,
    "dict_call": """
        import json

        json.dump(dict(basin=target_basin.tolist(), source_model="Gary-A"), f, allow_nan=False)
    """,
    "value_is_basin_under_another_key": """
        import json

        class Exporter:
            def save(self, model, f):
                vec = model.basin_matcher.target_basin.detach().cpu().tolist()
                json.dump({"vector": vec, "timestamp": now()}, f, allow_nan=False)
    """,
    "bare_vector": """
        import json

        json.dump(ocean_basin.tolist(), open("ocean.json", "w"), allow_nan=False)
    """,
    "write_dumps_encoded": """
        import json
        from pathlib import Path

        Path("b.json").write_bytes(json.dumps({"basin": basin.tolist()}, allow_nan=False).encode())
    """,
    "aliased_dump": """
        from json import dump as write_json

        write_json({"basin": active_basin.tolist(), "source_model": "A"}, fh, allow_nan=False)
    """,
}


@pytest.mark.parametrize("source", MISSING_PROVENANCE.values(), ids=MISSING_PROVENANCE.keys())
def test_missing_provenance(source: str) -> None:
    assert kinds(source) == ["provenance"]


ALLOW_NAN = {
    "default_allow_nan": """
        import json

        record = {"basin": basin.tolist(), "source_model": "Gary-A", "timestamp": ts}
        with open("basin.json", "w") as f:
            json.dump(record, f, indent=2)
    """,
    "explicit_true": """
        import json

        json.dump(
            {"basin": target_basin.tolist(), "source_model": m, "timestamp": t, "dim": 64},
            f,
            allow_nan=True,
        )
    """,
    "spread_metadata": """
        import json

        json.dump({**provenance, "basin": target_basin.tolist()}, f)
    """,
    "filled_in_later": """
        import json

        def export(basin, f, name):
            record = {"basin": basin.tolist()}
            record["source_model"] = name
            record.update(timestamp=now())
            json.dump(record, f)
    """,
}


@pytest.mark.parametrize("source", ALLOW_NAN.values(), ids=ALLOW_NAN.keys())
def test_allow_nan_left_on(source: str) -> None:
    assert kinds(source) == ["nan"]


def test_both_problems_are_reported() -> None:
    assert kinds("import json\njson.dump({'basin': basin.tolist()}, f)\n") == ["nan", "provenance"]


def test_missing_keys_are_named() -> None:
    [(line, message)] = messages(
        "import json\njson.dump({'basin': basin, 'timestamp': t}, f, allow_nan=False)\n"
    )
    assert line == 2
    assert "`source_model`" in message and "`timestamp`" not in message


NOT_FLAGGED = {
    "complete_record": """
        import json

        def save(basin, path, model_name):
            record = {
                "basin": basin.tolist(),
                "dim": 64,
                "source_model": model_name,
                "timestamp": datetime.now().isoformat(),
            }
            with open(path, "w") as f:
                json.dump(record, f, indent=2, allow_nan=False)
    """,
    "not_a_basin": """
        import json

        json.dump({"loss": loss, "basin_dim": 64, "basin_path": path}, f)
        json.dump(basin_path, f)
    """,
    "table_of_basins": """
        import json

        json.dump({"observer_basins": [b.tolist() for b in observer_basins]}, f)
    """,
    "dumps_for_size_only": """
        import json

        print(f"Basin extracted: {len(json.dumps({'basin': basin.tolist()}))} bytes")
    """,
    "not_json": """
        import yaml

        yaml.dump({"basin": basin.tolist()}, f)
    """,
    "shadowed_json": """
        class Store:
            def dump(self, obj, f):
                pass

        json = Store()
        json.dump({"basin": basin.tolist()}, f)
    """,
    "kwargs_passthrough_and_spread": """
        import json

        def write(payload, f, **kwargs):
            json.dump({**payload, "basin": basin.tolist()}, f, **kwargs)
    """,
    "experiment_config_with_basin_path": """
        import json

        json.dump({"basin": "runs/gary_a/basin.json", "lr": 1e-4}, f)
        json.dump({"basin": args.basin_path, "target_basin": None}, f)
    """,
    "json_load": """
        import json

        basin = json.load(open("basin.json"))["basin"]
    """,
}


@pytest.mark.parametrize("source", NOT_FLAGGED.values(), ids=NOT_FLAGGED.keys())
def test_not_flagged(source: str) -> None:
    assert messages(source) == []


def test_allow_nan_fix_is_unsafe_and_keeps_the_call() -> None:
    source = (
        "import json\n"
        "json.dump(\n"
        "    {'basin': basin.tolist(), 'source_model': 'A', 'timestamp': t},\n"
        "    f,\n"
        "    allow_nan=True,\n"
        ")\n"
    )
    rules: list[type[Rule]] = [BasinMissingProvenance]
    assert fix_source("e.py", source, Config(), rules, unsafe=False).applied == 0
    fixed = fix_source("e.py", source, Config(), rules, unsafe=True)
    assert fixed.source == source.replace("allow_nan=True", "allow_nan=False")
    assert fixed.remaining == []


def test_trigger() -> None:
    assert not rule_findings(BasinMissingProvenance, "json.load(basin_file)\n", Config())
    assert not rule_findings(BasinMissingProvenance, "json.dump(record, f)\n", Config())
    assert gate_passes(BasinMissingProvenance, "json.dump({'basin': b}, f)\n", Config())


def test_trigger_skips_json_logs_in_basin_code() -> None:
    source = textwrap.dedent(
        """
        import json

        class DriftMonitor:
            def record(self, model, step):
                self.records.append({"step": step, "drift": float(model.basin_distance())})

            def flush(self, path):
                with open(path, "w") as handle:
                    json.dump(self.records, handle, indent=2)
        """
    )
    assert not rule_findings(BasinMissingProvenance, source, Config())


def test_trigger_follows_aliases_and_bound_names() -> None:
    aliased = "from json import dump as write_json\nwrite_json({'basin': basin.tolist()}, f)\n"
    bound = "import json\nrecord = make(basin)\njson.dump(record, f)\n"
    for source in (aliased, bound):
        assert gate_passes(BasinMissingProvenance, source, Config())


@pytest.mark.parametrize(
    "source",
    [
        # a table of token strings keyed by id, under a basin-worded key
        """
        import json

        def save_meta(result, path):
            meta = {
                "target_dim": result.target_dim,
                "basin_strings": {str(k): v for k, v in result.basin_strings.items()},
            }
            with open(path, "w") as f:
                json.dump(meta, f, indent=2)
        """,
        # ids, counts and a string label, not the vector
        """
        import json

        def save_index(path, basin_ids, basin_counts, vocab):
            record = {"basin": str(vocab.version), "basin_ids": list(basin_ids),
                      "basin_counts": dict(basin_counts), "basin_words": vocab.words}
            json.dump(record, open(path, "w"))
        """,
    ],
)
def test_basin_worded_dicts_of_strings_or_ids_are_not_basins(source: str) -> None:
    assert rule_findings(BasinMissingProvenance, source) == []


# -- the provenance keys come from the basin file schema (issue 16: one home per fact) --


@pytest.mark.parametrize("key", provenance_keys())
def test_provenance_keys_are_the_ones_the_basin_format_requires(tmp_path: Path, key: str) -> None:
    path = save_basin(
        tmp_path / "basin.json", [1 / 64] * 64, source_model="Gary-A", extracted_from="a.pt"
    )
    document = json.loads(path.read_text("utf-8"))
    assert document_problems(document) == []
    del document[key]
    assert document_problems(document), f"the format accepts a basin without {key}"
    others = ", ".join(f"'{other}': x" for other in provenance_keys() if other != key)
    source = f"import json\njson.dump({{'basin': basin.tolist(), {others}}}, f, allow_nan=False)\n"
    [(_, message)] = messages(source)
    assert f"`{key}`" in message


def test_a_record_with_every_schema_provenance_key_is_not_flagged() -> None:
    assert {"source_model", "timestamp"} <= set(provenance_keys())
    keys = ", ".join(f"'{key}': x" for key in provenance_keys())
    assert messages(f"import json\njson.dump({{'basin': b, {keys}}}, f, allow_nan=False)\n") == []
