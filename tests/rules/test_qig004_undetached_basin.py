"""QIG004 undetached-basin: realistic flagged and quiet shapes, fixes and the trigger."""

from __future__ import annotations

import textwrap

import pytest
from rule_cases import gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.engine.fixer import fix_source
from qig_guard.rules.qig004_undetached_basin import UndetachedBasin


def _findings(source: str, config: Config | None = None) -> list[tuple[int, str]]:
    lines = textwrap.dedent(source).splitlines()
    return [
        (f.line, lines[f.line - 1][f.column - 1 : f.end_column - 1])
        for f in rule_findings(UndetachedBasin, source, config)
    ]


def _expected(source: str) -> list[tuple[int, str]]:
    """Lines marked ``# here: <read>`` with the read each must report."""
    expected = []
    for number, line in enumerate(textwrap.dedent(source).splitlines(), 1):
        if "# here: " in line:
            expected.extend((number, read) for read in line.split("# here: ")[1].split(", "))
    return expected


SPEC_TEMPLATE = """
    def sync_constellation_basins(active_basin: torch.Tensor,
                                  observer_basins: List[torch.Tensor],
                                  ocean_basin: torch.Tensor,
                                  sync_weight: float = 0.1) -> Tuple[Tensor, List[Tensor]]:
        ocean_basin_updated = ocean_basin.detach().clone()  # FROZEN
        observer_basins_updated = []
        for obs_basin in observer_basins:
            direction = active_basin.detach() - obs_basin  # Detach active!
            obs_basin_new = obs_basin + sync_weight * direction
            observer_basins_updated.append(obs_basin_new)
        return ocean_basin_updated, observer_basins_updated
"""

FLAGGED = {
    "spec-template-without-detach": """
        def sync_constellation_basins(active_basin, observer_basins, ocean_basin, sync_weight=0.1):
            ocean_basin_updated = ocean_basin.clone()
            observer_basins_updated = []
            for obs_basin in observer_basins:
                direction = active_basin - obs_basin  # here: active_basin
                obs_basin_new = obs_basin + sync_weight * direction
                observer_basins_updated.append(obs_basin_new)
            return ocean_basin_updated, observer_basins_updated
    """,
    "ocean-attribute-read": """
        class Constellation:
            def step(self):
                ocean_basin = self.ocean.basin  # here: self.ocean.basin
                r = ocean.basin_matcher.current_basin  # here: ocean.basin_matcher.current_basin
    """,
    "fisher-loss": """
        from qig.geometry import fisher_distance
        def vicarious_loss(obs_basin, active_basin, fisher_diag):
            loss = fisher_distance(obs_basin, active_basin, fisher_diag)  # here: active_basin
            return loss
    """,
    "loss-helpers": """
        import torch.nn.functional as F
        l1 = F.mse_loss(observer.basin, active.basin)  # here: active.basin
        l2 = geodesic_distance(obs_basins[i], active_gary.basin)  # here: active_gary.basin
        l3 = basin_proximity_loss(model.current_basin, ocean_basin)  # here: ocean_basin
    """,
    "flows-through-local": """
        def observe(self, observer):
            target = self.active.basin
            reference = target.clone()
            observer.basin_loss = fisher_distance(observer.basin, reference)  # here: reference
    """,
    "aug-assign-and-inplace": """
        def blend(obs_basin, active_basin, w):
            obs_basin += w * active_basin  # here: active_basin
            obs_basin.lerp_(active_basin, w)  # here: active_basin
    """,
    "ocean-in-arithmetic": """
        def drift(active, ocean_basin):
            return fisher_distance(active.basin, ocean_basin)  # here: ocean_basin
    """,
    "ocean-method-call": """
        def loop(ocean, obs_basin, x):
            ref = ocean.compute_basin(x)
            return obs_basin - ref  # here: ref
    """,
    "no-grad-ends": """
        import torch
        def sync(active_basin, obs_basin):
            with torch.no_grad():
                snapshot = active_basin.norm()
            return obs_basin + 0.1 * (active_basin - obs_basin)  # here: active_basin
    """,
    "closure-outside-no-grad": """
        import torch
        with torch.no_grad():
            def later(active_basin, obs_basin):
                return active_basin - obs_basin  # here: active_basin
    """,
}

QUIET = {
    "spec-template": SPEC_TEMPLATE,
    "detached-reads": """
        ocean_basin = ocean.basin.detach().clone()
        target = active.basin.detach()
        direction = target - obs_basin
        direction = active_basin.data - obs_basin
        loss = fisher_distance(obs_basin, active.basin.detach())
    """,
    "detached-local-keeps-its-name": """
        def sync(active, obs_basin):
            active_basin = active.basin.detach()
            return obs_basin + 0.1 * (active_basin - obs_basin)
    """,
    "no-grad-block": """
        import torch
        with torch.no_grad():
            ocean_basin = ocean.basin
            direction = active_basin - obs_basin
    """,
    "inference-mode-decorator": """
        from torch import inference_mode
        class Sync:
            @inference_mode()
            def __call__(self, obs_basin):
                return obs_basin - self.active.basin
    """,
    "bare-no-grad-decorator": """
        import torch
        @torch.no_grad
        def sync(active_basin, obs_basin):
            return active_basin - obs_basin
    """,
    "computed-under-no-grad-earlier": """
        import torch
        def observe(active, obs_basin):
            with torch.no_grad():
                target = active.basin
                ocean_ref = ocean.basin
            direction = target - obs_basin
            return fisher_distance(obs_basin, ocean_ref) + direction.norm()
    """,
    "observer-own-basin": """
        obs_basin_new = obs_basin + sync_weight * direction
        loss = fisher_distance(observer.basin, obs_target)
        obs_basin = observer.basin
    """,
    "active-own-training": """
        def train_step(active, target_basin):
            current = active.basin_matcher.current_basin
            loss = fisher_distance(current, target_basin)
            loss = loss + basin_proximity_loss(active_basin, target_basin)
            loss.backward()
    """,
    "active-toward-ocean": """
        loss = fisher_distance(active.basin, ocean.basin.detach())
    """,
    "not-basin-tensors": """
        dim = ocean.basin_dim
        path = ocean.basin_path
        matcher = ocean.basin_matcher
        n = ocean.basin_dim * 2
    """,
    "loaded-from-file": """
        import json, torch
        def load(path, obs_basin):
            active_basin = torch.tensor(json.load(open(path))["basin"])
            return active_basin - obs_basin
    """,
    "string-formatting": """
        print("ocean basin: %s" % ocean_basin)
    """,
    "oceanography": """
        x = oceanography.basin - obs_basin
    """,
}


@pytest.mark.parametrize("source", FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str) -> None:
    assert _findings(source) == _expected(source)


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_not_flagged(source: str) -> None:
    assert _findings(source) == []


def test_names_come_from_config() -> None:
    config = Config(active_models=("teacher",), frozen_models=("anchor",), basin_names=("*ident*",))
    source = "d = teacher_identity - student_identity\nr = anchor.identity\nx = ocean.basin\n"
    assert _findings(source, config) == [(1, "teacher_identity"), (2, "anchor.identity")]


def test_trigger() -> None:
    assert not rule_findings(UndetachedBasin, "d = basin - obs_basin\nactive = True\n", Config())
    assert gate_passes(UndetachedBasin, "d = self.active.basin_matcher.current_basin\n", Config())
    assert gate_passes(UndetachedBasin, "x = OceanBasin\n", Config())


TRIGGER_KEEPS = {
    **FLAGGED,
    "rebound-to-a-live-read": """
        def sync(active, ocean_basin, obs_basin):
            ocean_basin = ocean_basin.detach()
            ocean_basin = ocean.basin_matcher.current_basin
            return fisher_distance(obs_basin, ocean_basin)
    """,
    "detached-in-another-function": """
        def snapshot(ocean):
            ocean_basin = ocean.basin.detach()
        def sync(ocean_basin, obs_basin):
            return fisher_distance(obs_basin, ocean_basin)
    """,
    "detached-then-module-level": """
        def snapshot(ocean):
            ocean_basin = ocean.basin.detach()
        loss = fisher_distance(obs_basin, ocean_basin)
    """,
}


@pytest.mark.parametrize("source", TRIGGER_KEEPS.values(), ids=TRIGGER_KEEPS.keys())
def test_trigger_keeps_every_flagged_shape(source: str) -> None:
    assert _findings(source)  # the rule flags it, so the trigger must let it through
    assert gate_passes(UndetachedBasin, textwrap.dedent(source), Config())


# Owner-named basins that are only detached, assigned to, or locals rebound to a
# detached value: the trigger skips these files without parsing them (speed).
TRIGGER_SKIPS = {
    "spec-template": SPEC_TEMPLATE,
    "detached-local-in-loss": """
        import torch
        def train(model, ocean, batch):
            with torch.no_grad():
                ocean_basin = ocean(batch)["basin"].detach().clone()
            return fisher_distance(model.basin, ocean_basin)
    """,
    "parameters-and-detached-reads": """
        def sync(active_basin, observer_basins, ocean_basin, sync_weight=0.1):
            ocean_basin = ocean_basin.detach().clone()
            target = active_basin.detach()
            drift = fisher_distance(model.basin, self.ocean.basin.detach())
            return ocean_basin, [o + sync_weight * (target - o) for o in observer_basins]
    """,
}


@pytest.mark.parametrize("source", TRIGGER_SKIPS.values(), ids=TRIGGER_SKIPS.keys())
def test_trigger_skips_look_alikes(source: str) -> None:
    assert _findings(source) == []
    assert not rule_findings(UndetachedBasin, textwrap.dedent(source), Config())


def _fix(source: str, unsafe: bool) -> str:
    source = textwrap.dedent(source)
    return fix_source("sync.py", source, Config(), [UndetachedBasin], unsafe=unsafe).source


def test_frozen_fix_is_safe_active_fix_is_not() -> None:
    source = """
        ocean_basin = ocean.basin.clone()
        direction = (active_basin) - obs_basin
    """
    safe = _fix(source, unsafe=False)
    assert safe == textwrap.dedent(
        """
        ocean_basin = ocean.basin.detach().clone()
        direction = (active_basin) - obs_basin
        """
    )
    assert _fix(source, unsafe=True) == textwrap.dedent(
        """
        ocean_basin = ocean.basin.detach().clone()
        direction = (active_basin.detach()) - obs_basin
        """
    )


def test_fix_of_flow_through_local_detaches_the_use_once() -> None:
    fixed = _fix(FLAGGED["flows-through-local"], unsafe=True)
    assert "fisher_distance(observer.basin, reference)" not in fixed
    assert fixed.count(".detach()") == 1
    assert _findings(fixed) == []


@pytest.mark.parametrize(
    "source",
    [
        # a NumPy-only module: an Ocean basin held in an array has no graph to cut
        """
        import numpy as np

        class OceanObserver:
            def __init__(self, dim=64):
                self.ocean_basin = np.zeros(dim)

            def observe(self, centroid, alpha=0.1):
                self.ocean_basin = (1 - alpha) * self.ocean_basin + alpha * centroid
        """,
        # torch is imported, but the project only ever stores arrays and lists there
        """
        import numpy as np
        import torch

        class Meta:
            def __init__(self):
                self.ocean_basin = np.ones(64) / 64
                self.history = [self.ocean_basin.tolist()]

        def drift(meta, obs_basin):
            return obs_basin + 0.1 * (meta.ocean_basin - obs_basin)
        """,
        # converted to a NumPy array or a list before use: nothing to detach
        """
        import numpy as np
        import torch

        def report(ocean, obs_basin):
            ocean_basin = np.asarray(ocean.basin)
            as_list = [float(x) for x in ocean.basin.tolist()]
            return obs_basin - ocean_basin, as_list
        """,
    ],
)
def test_values_that_carry_no_gradient_are_quiet(source: str) -> None:
    assert rule_findings(UndetachedBasin, source) == []


def test_an_attribute_that_also_holds_tensors_is_still_checked() -> None:
    source = """
        import numpy as np
        import torch

        class Ocean:
            def __init__(self):
                self.ocean_basin = np.zeros(64)

            def load(self, path):
                self.ocean_basin = torch.tensor(np.load(path))

        def sync(meta, obs_basin, sync_weight=0.1):
            return obs_basin + sync_weight * (meta.ocean_basin - obs_basin)  # 13
    """
    assert [f.line for f in rule_findings(UndetachedBasin, source)] == [13]


# -- gradient-keeping and detaching methods are facts shared with other rules (issue 16) --

GRAPH_KEPT = {
    "type-as": """
        def sync(obs_basin, active_basin, w):
            obs_basin += w * active_basin.type_as(obs_basin)  # here: active_basin
    """,
    "type-as-local": """
        def sync(obs_basin, active_basin, w):
            active = active_basin.type_as(obs_basin)
            obs_basin += w * active  # here: active
    """,
    "ravel": """
        def sync(obs_basin, ocean_basin, w):
            obs_basin += w * ocean_basin.ravel()  # here: ocean_basin
    """,
}
GRAPH_LEFT = {
    "detached-then-cast": """
        def sync(obs_basin, active_basin, w):
            obs_basin += w * active_basin.detach().type_as(obs_basin)
    """,
    "detached-in-place": """
        def sync(obs_basin, ocean_basin, w):
            obs_basin += w * ocean_basin.detach_()
    """,
}


@pytest.mark.parametrize("source", GRAPH_KEPT.values(), ids=GRAPH_KEPT.keys())
def test_methods_that_keep_the_graph_keep_the_basin(source: str) -> None:
    assert _findings(source) == _expected(source)


@pytest.mark.parametrize("source", GRAPH_LEFT.values(), ids=GRAPH_LEFT.keys())
def test_methods_that_leave_the_graph_detach(source: str) -> None:
    assert _findings(source) == []
