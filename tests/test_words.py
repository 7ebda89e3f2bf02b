from __future__ import annotations

import pytest

from qig_guard.facts.words import matches, matches_any, text_pattern, words


def test_words_split_snake_camel_and_dots() -> None:
    assert words("self.OceanKernel") == ("self", "ocean", "kernel")
    assert words("ocean_model_v2") == ("ocean", "model", "v", "2")
    assert words("HTTPBasinServer") == ("http", "basin", "server")


@pytest.mark.parametrize(
    ("identifier", "name"),
    [
        ("ocean", "ocean"),
        ("ocean_model", "ocean"),
        ("self.ocean", "ocean"),
        ("OceanKernel", "ocean"),
        ("model.basin_matcher.target_basin", "target_basin"),
        ("obs_basins", "*basin*"),
        ("consolidation_step", "consolidat*"),
        ("DreamPhase", "dream*"),
    ],
)
def test_matches(identifier: str, name: str) -> None:
    assert matches(identifier, name)


@pytest.mark.parametrize(
    ("identifier", "name"),
    [
        ("oceanography", "ocean"),
        ("target", "target_basin"),
        ("basin_target", "target_basin"),
        ("reconsolidate", "consolidat*"),
        ("", "ocean"),
    ],
)
def test_does_not_match(identifier: str, name: str) -> None:
    assert not matches(identifier, name)


def test_matches_any_and_text_pattern() -> None:
    assert matches_any("self.active_gary", ("ocean", "active"))
    assert not matches_any("passive", ("ocean", "active"))
    import re

    pattern = re.compile(text_pattern(["target_basin", "ocean"]))
    assert pattern.search("x.TargetBasin = 1")
    assert pattern.search("OCEAN")
    assert not pattern.search("target")
    inner = re.compile(text_pattern(["teach*er"]))
    assert inner.search("self.teacher_model") and matches("self.teacher_model", "teach*er")
