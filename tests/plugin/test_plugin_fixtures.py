"""The ``basin_*`` fixtures, in real pytest sessions."""

from __future__ import annotations

import importlib.util

import pytest

USE_FACTORY = """
import json

from qig_guard.basin import load_basin
from qig_guard.testing import assert_valid_basin_file


def test_factory(basin_factory, basin_frozen_facts, tmp_path):
    default = basin_factory()
    other = basin_factory("sub/other.basin.json", seed=1, source_model="Gary-B", regime="geometric")
    assert default == tmp_path / "basin.json"
    assert_valid_basin_file(default)
    assert_valid_basin_file(other)
    first, second = load_basin(default), load_basin(other)
    assert first.dim == 64 and first.basin != second.basin
    assert (second.source_model, second.metadata["regime"]) == ("Gary-B", "geometric")
    assert dict(first.physics_constants) == {
        name: fact.value for name, fact in basin_frozen_facts.items()
    }
    print("\\nfacts:", {name: fact.value for name, fact in basin_frozen_facts.items()})
"""

USE_TORCH_FIXTURES = """
import pytest


@pytest.fixture
def ocean():
    return None


def test_model(basin_reference_model):
    pass


def test_constellation(basin_constellation):
    pass


def test_factory_needs_no_torch(basin_factory):
    basin_factory()


@pytest.mark.basin_invariants(ocean="ocean")
def test_marker(ocean):
    pass
"""

BLOCK_TORCH = """
import sys

sys.modules["torch"] = None
"""


def test_factory_writes_valid_basins_with_the_projects_facts(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.qig-guard.frozen-facts]
        kappa_eff = { value = 63.5, tolerance = 0.1 }
        beta = { value = 0.5, tolerance = 0.01 }
        gamma = { value = 2.0, tolerance = 0.0 }
        """
    )
    pytester.makepyfile(test_factory=USE_FACTORY)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["facts: {'kappa_eff': 63.5, 'beta': 0.5, 'gamma': 2.0}"])


def test_torch_fixtures_skip_with_a_reason_without_torch(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(BLOCK_TORCH)
    pytester.makepyfile(test_uses=USE_TORCH_FIXTURES)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * basin_reference_model needs torch (pip install 'qig-guard?runtime?'): *",
            "SKIPPED * basin_constellation needs torch (pip install 'qig-guard?runtime?'): *",
            "SKIPPED * basin_invariants needs torch (pip install 'qig-guard?runtime?'): *",
        ]
    )


MODELS = """
import torch

from qig_guard.runtime import Constellation, QIGKernelRecursive
from qig_guard.testing import assert_no_weight_copy, assert_ocean_frozen


def test_reference_model(basin_reference_model, basin_factory):
    from qig_guard.basin import load_basin

    model = basin_reference_model
    assert isinstance(model, QIGKernelRecursive)
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    target = load_basin(basin_factory("expected.json")).basin
    expected = torch.tensor(target, dtype=torch.float64)
    assert torch.allclose(model.basin_matcher.target_basin.double(), expected, atol=1e-6)
    logits, telemetry = model(torch.randint(0, 64, (2, 8)))
    assert logits.shape == (2, 8, 64) and 0.0 <= telemetry["Phi"] <= 1.0
    print("\\nfirst weight:", float(model.token_embedding.weight[0, 0]))


def test_constellation(basin_constellation):
    constellation = basin_constellation
    assert isinstance(constellation, Constellation)
    assert len(constellation.observers) == 2
    assert_ocean_frozen(constellation.ocean)
    for member in constellation.observers:
        assert_no_weight_copy(member, constellation.active)
    assert_no_weight_copy(constellation.ocean, constellation.active)
    ocean_basin, targets = constellation.sync()
    assert not ocean_basin.requires_grad and len(targets) == 2
"""

RNG = """
import torch


def test_rng_untouched(request):
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    request.getfixturevalue("basin_reference_model")
    assert torch.equal(torch.rand(1), expected)
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_reference_model_and_constellation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_models=MODELS, test_rng=RNG)
    first = pytester.runpytest_subprocess("-s")
    first.assert_outcomes(passed=3)
    second = pytester.runpytest_subprocess("-s", "-k", "reference_model")
    weights = [
        line
        for result in (first, second)
        for line in result.stdout.lines
        if line.startswith("first weight:")
    ]
    assert len(weights) == 2 and weights[0] == weights[1]


USE_PROJECT_DIM = """
from qig_guard.basin import load_basin


def test_dims(basin_factory, basin_reference_model, basin_checkpoint_pair):
    assert load_basin(basin_factory()).dim == 8
    assert load_basin(basin_factory("wide.json", dim=64)).dim == 64
    assert basin_reference_model.basin_matcher.target_basin.shape == (8,)
    assert load_basin(basin_checkpoint_pair.basin).dim == 8
"""


def test_fixtures_follow_the_projects_basin_dimension(pytester: pytest.Pytester) -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch")
    pytester.makepyprojecttoml("[tool.qig-guard.basin]\ndim = 8\n")
    pytester.makepyfile(test_dims=USE_PROJECT_DIM)
    pytester.runpytest().assert_outcomes(passed=1)
