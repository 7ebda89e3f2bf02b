"""The codes ``qig-guard basin validate`` reports (the ``QIG1xx`` range)."""

from __future__ import annotations

from dataclasses import replace

from qig_guard.engine.report import RuleInfo

SCHEMA = "QIG100"
SIZE = "QIG101"
NON_FINITE = "QIG102"
PROVENANCE = "QIG103"
FROZEN_FACTS = "QIG104"
LEGACY = "QIG105"
MALFORMED = "QIG106"

BASIN_RULES: dict[str, RuleInfo] = {
    info.code: replace(info, docs_path=f"docs/rules.md#{info.code.lower()}-{info.name}")
    for info in (
        RuleInfo(
            SCHEMA,
            "basin-schema",
            "The file does not match the basin file schema (version 1), or is no basin file.",
            "A basin file is one flat vector of `dim` numbers with `schema_version`, "
            "`source_model`, `timestamp`, `physics_constants` and `provenance`; see "
            "`qig_guard/basin/basin-v1.schema.json`. The message gives the JSON path at fault. "
            "`dim` must be the project's (`[tool.qig-guard.basin] dim`, default 64). A JSON "
            "document with neither a basin vector nor a legacy basin shape is one finding, "
            "'not a basin file', with the reason.",
        ),
        RuleInfo(
            SIZE,
            "basin-file-size",
            "The file's size is outside the configured range.",
            "A basin is a 2-4 KB identity, not a checkpoint. Configure the range with "
            "`min-size`/`max-size` in `[tool.qig-guard.basin]` (default: at most 4096 bytes).",
        ),
        RuleInfo(
            NON_FINITE,
            "basin-non-finite",
            "A value is NaN or infinite.",
            "JSON has no NaN or Infinity; Python's `json` writes and reads them anyway. "
            "A basin with a non-finite coordinate poisons every distance computed from it.",
        ),
        RuleInfo(
            PROVENANCE,
            "basin-provenance",
            "The basin does not say where it came from.",
            "`provenance.extracted_from` names the checkpoint (or file) the basin was "
            "extracted from, so a transferred identity can be traced.",
        ),
        RuleInfo(
            FROZEN_FACTS,
            "basin-frozen-facts",
            "A physics constant is outside the team's frozen facts.",
            "Each constant in `[tool.qig-guard.frozen-facts]` (or the facts file it names) "
            "must appear in `physics_constants` within its tolerance.",
        ),
        RuleInfo(
            LEGACY,
            "basin-legacy-format",
            "The file is a legacy basin shape, not a version 1 basin file.",
            "Sync packets and pre-version-1 basin files convert with "
            "`qig-guard basin convert OLD.json -o NEW.json`; identity descriptors hold no "
            "coordinate vector and cannot be converted.",
        ),
        RuleInfo(
            MALFORMED,
            "basin-malformed-json",
            "The file is not strict JSON.",
            "Basin files are UTF-8 JSON without duplicate keys, deeper than 64 levels of "
            "nesting, or truncation; nothing else (never pickle) is read.",
        ),
    )
}
