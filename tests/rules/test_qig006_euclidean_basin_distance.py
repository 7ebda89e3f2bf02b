"""QIG006 euclidean-basin-distance on realistic research code."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
from rule_cases import rule_findings

from qig_guard.checker import check_source, check_text
from qig_guard.config import Config
from qig_guard.rules.qig006_euclidean_basin_distance import EuclideanBasinDistance


def flagged_lines(source: str, config: Config | None = None) -> list[int]:
    return [f.line for f in rule_findings(EuclideanBasinDistance, source, config)]


FLAGGED = {
    "torch_norm": """
        import torch

        def basin_loss(model, target_basin):
            return torch.norm(model.basin_matcher.current_basin - target_basin)
    """,
    "norm_method_p2": """
        drift = (new_basin - old_basin).norm(p=2)
    """,
    "linalg_vector_norm_alias": """
        from torch.linalg import vector_norm as vn

        d = vn(active_basin.detach() - observer_basin, dim=-1)
    """,
    "numpy_norm": """
        import numpy as np

        def report(ocean_basin, active_basin):
            print(np.linalg.norm(ocean_basin.numpy() - active_basin.numpy()))
    """,
    "torch_dist": """
        import torch

        gap = torch.dist(ocean_basin, active_basin)
    """,
    "cdist_tables": """
        import torch

        pairwise = torch.cdist(observer_basins, observer_basins)
    """,
    "pairwise_distance": """
        import torch.nn.functional as F

        d = F.pairwise_distance(current_basin.unsqueeze(0), target_basin.unsqueeze(0))
    """,
    "mse_loss_flow": """
        import torch.nn.functional as F

        class Trainer:
            def step(self, model, batch):
                current = model.basin_matcher.current_basin
                target = model.basin_matcher.target_basin.detach()
                return F.mse_loss(current, target)
    """,
    "mse_module_inline": """
        from torch import nn

        loss = nn.MSELoss()(current_basin, target_basin)
    """,
    "mse_module_attribute": """
        import torch.nn as nn

        class BasinAligner(nn.Module):
            def __init__(self):
                super().__init__()
                self.criterion = nn.MSELoss()

            def forward(self, current_basin, target_basin):
                return self.criterion(current_basin, target_basin)
    """,
    "mse_module_local": """
        import torch

        def align(model, teacher_basin):
            criterion = torch.nn.MSELoss(reduction="sum")
            return criterion(model.basin_matcher.current_basin, teacher_basin)
    """,
    "cosine_similarity": """
        import torch.nn.functional as F

        sim = 1 - F.cosine_similarity(active_basin, ocean_basin, dim=0)
    """,
    "hand_rolled_sqrt_sum": """
        import torch

        d = torch.sqrt(((basin_a - basin_b) ** 2).sum())
    """,
    "hand_rolled_through_diff_name": """
        import torch

        def distance(model, target_basin):
            d = model.basin_matcher.current_basin - target_basin
            return torch.sqrt((d * d).sum())
    """,
    "hand_rolled_power_half": """
        d = ((ocean_basin - active_basin) ** 2).sum() ** 0.5
    """,
    "squared_mean_no_sqrt": """
        import torch

        loss = torch.mean((current_basin - target_basin).pow(2))
    """,
    "math_sqrt_chordal": """
        import math
        import torch

        def chordal(basin_a, basin_b):
            cos = torch.dot(basin_a, basin_b).item()
            return math.sqrt(2 * (1 - cos))
    """,
    "chordal_inline_cosine": """
        import torch
        import torch.nn.functional as F

        d = torch.sqrt(2 - 2 * F.cosine_similarity(current_basin, target_basin, dim=0))
    """,
    "identity_fisher": """
        import torch
        from qig_guard.runtime import fisher_distance

        def consolidate(model, target_basin):
            current = model.basin_matcher.current_basin
            return fisher_distance(current, target_basin, torch.ones_like(current))
    """,
    "identity_fisher_via_name": """
        import numpy as np

        def compare(ocean_basin, active_basin):
            metric = np.ones(64)
            return fisher_distance(ocean_basin, active_basin, fisher_diag=metric)
    """,
    "loop_over_table": """
        import torch

        for b in observer_basins:
            print(torch.norm(b - ocean_basin))
    """,
    "comprehension_over_table": """
        import torch

        dists = [torch.norm(ocean_basin - b) for b in observer_basins]
    """,
    "basin_distance_function_params": """
        import torch

        def basin_distance(a, b):
            return torch.norm(a - b)
    """,
    "method_chain_sqrt": """
        d = (current_basin - target_basin).pow(2).sum().sqrt()
    """,
    "square_sum_sqrt_method": """
        import torch as T

        d = T.sum(T.square(basin_a - basin_b), dim=-1).sqrt()
    """,
    "constellation_monitor": """
        import torch

        class ConstellationMonitor:
            def __init__(self, ocean, garys):
                self.ocean = ocean
                self.garys = garys

            @torch.no_grad()
            def spread(self):
                reference = self.ocean.basin.detach()
                gaps = {}
                for name, gary in self.garys.items():
                    current = gary.basin_matcher.current_basin
                    delta = current - reference
                    gaps[name] = torch.linalg.norm(delta).item()
                return gaps
    """,
    "tensor_dist_method": """
        gap = ocean_basin.dist(active_basin)
    """,
}


@pytest.mark.parametrize("source", FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str) -> None:
    assert len(flagged_lines(source)) == 1


NOT_FLAGGED = {
    "fisher_distance": """
        from qig_guard.runtime import fisher_distance

        d = fisher_distance(current_basin, target_basin, model.fisher_diag)
    """,
    "weighted_difference": """
        import torch

        d = torch.norm(torch.sqrt(fisher_diag) * (current_basin - target_basin))
    """,
    "weighted_hand_rolled": """
        import torch

        d = torch.sqrt((fisher_diag * (current_basin - target_basin) ** 2).sum())
    """,
    "normalisation": """
        import torch

        unit = basin / basin.norm()
        magnitude = torch.norm(target_basin)
        unit2 = torch.nn.functional.normalize(active_basin, dim=0)
    """,
    "not_basins": """
        import torch
        import torch.nn.functional as F

        loss = F.mse_loss(logits, labels)
        gap = torch.norm(weights_a - weights_b)
        sim = F.cosine_similarity(query, key, dim=-1)
    """,
    "fisher_implementation": """
        import torch

        def fisher_distance(basin_a, basin_b, fisher_diag):
            diff = basin_a - basin_b
            return torch.sqrt((diff * diff * fisher_diag).sum())

        class FisherMetric:
            def distance(self, current_basin, target_basin):
                return torch.norm(current_basin - target_basin)
    """,
    "l1_norm": """
        import torch

        d = torch.norm(current_basin - target_basin, p=1)
        e = torch.dist(current_basin, target_basin, 1)
    """,
    "abs_sum": """
        d = (current_basin - target_basin).abs().sum()
    """,
    "sync_interpolation": """
        def sync(active_basin, obs_basin, sync_weight=0.1):
            direction = active_basin.detach() - obs_basin
            return obs_basin + sync_weight * direction
    """,
    "fisher_with_estimated_diag": """
        import torch

        def consolidate(model, target_basin):
            fisher = estimate_fisher(model)
            return fisher_distance(model.basin_matcher.current_basin, target_basin, fisher)
    """,
    "ones_elsewhere": """
        import torch

        mask = torch.ones_like(basin)
        d = fisher_distance(current_basin, target_basin, model.fisher_diag) * mask
    """,
    "mse_module_on_non_basins": """
        import torch.nn as nn

        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.criterion = nn.MSELoss()

            def forward(self, pred, target):
                return self.criterion(pred, target)
    """,
    "sum_of_squares_of_single_basin": """
        energy = (current_basin ** 2).sum()
    """,
    "shadowed_torch": """
        class Stub:
            def norm(self, x):
                return 0

        torch = Stub()
        d = torch.norm
    """,
    "reassigned_diff": """
        import torch

        def f(current_basin, target_basin, weights):
            d = current_basin - target_basin
            d = weights * d
            return torch.norm(d)
    """,
    "centred_single_vector": """
        import torch

        spread = torch.norm(basin - basin.mean())
        shifted = (target_basin - 1.0).norm()
    """,
    "sqrt_of_non_chordal": """
        import math

        scale = math.sqrt(2 * (1 - dropout))
    """,
}


@pytest.mark.parametrize("source", NOT_FLAGGED.values(), ids=NOT_FLAGGED.keys())
def test_not_flagged(source: str) -> None:
    assert flagged_lines(source) == []


def test_hand_rolled_distance_is_reported_once_at_the_outer_call() -> None:
    source = """
        import torch
        d = torch.sqrt(torch.sum((current_basin - target_basin) ** 2))
    """
    text = textwrap.dedent(source)
    result = check_source("g.py", text.encode(), Config(), [EuclideanBasinDistance])
    assert [(f.line, f.column) for f in result.findings] == [(3, 5)]


def test_configured_basin_names() -> None:
    config = replace(Config(), basin_names=("identity",))
    source = """
        import torch
        a = torch.norm(identity_a - identity_b)
        b = torch.norm(basin_a - basin_b)
    """
    assert flagged_lines(source, config) == [3]


def test_trigger() -> None:
    assert not EuclideanBasinDistance.could_match("basin = load()\nprint(basin)\n", Config())
    assert not EuclideanBasinDistance.could_match("torch.norm(a - b)\n", Config())
    assert EuclideanBasinDistance.could_match("torch.norm(basin - b)\n", Config())


TRIGGER_FLAGGED = {
    "flow_through_locals": (
        "import torch\n\ndef gap(model, target_basin):\n"
        "    cur = model.basin_matcher.current_basin\n    d = cur - target_basin\n"
        "    return d.norm()\n"
    ),
    "aliased_vector_norm": (
        "from torch.linalg import vector_norm as vn\nx = vn(current_basin - target_basin)\n"
    ),
    "half_power": "s = ((basin_a - basin_b) ** 2).sum() ** 0.5\n",
    "multi_line_norm": (
        "import torch\ngap = torch.norm(\n    current_basin\n    - target_basin,\n)\n"
    ),
    "chordal_through_name": (
        "import torch\nimport torch.nn.functional as F\n"
        "cos = F.cosine_similarity(basin_a, basin_b, dim=0)\nd = torch.sqrt(2 * (1 - cos))\n"
    ),
    "module_through_attribute": (
        "import torch.nn as nn\n\nclass Loss:\n    def __init__(self):\n"
        "        self.crit = nn.MSELoss()\n\n    def __call__(self, basin, target_basin):\n"
        "        return self.crit(basin, target_basin)\n"
    ),
    "distance_parameters": (
        "import torch\n\ndef basin_distance(a, b):\n    return torch.dist(a, b)\n"
    ),
}


@pytest.mark.parametrize("source", TRIGGER_FLAGGED.values(), ids=TRIGGER_FLAGGED.keys())
def test_trigger_passes_every_flagged_shape(source: str) -> None:
    for case in (source, *FLAGGED.values()):
        assert EuclideanBasinDistance.could_match(textwrap.dedent(case), Config())
    assert flagged_lines(source)


TRIGGER_REJECTED = {
    "layer_norm_module": (
        "class Block:\n    def forward(self, hidden):\n"
        "        hidden = self.norm(hidden + mixed)\n        basin = self.basin_proj(hidden)\n"
        "        return hidden.mean(dim=1), basin\n"
    ),
    "fisher_distance_training": (
        "basin_loss = fisher_distance(telemetry['basin'], ocean_basin, model.fisher_diag)\n"
        "loss = ocean(batch)[0].mean()\n"
    ),
    "unrelated_norm": "import torch\n# basin drift is logged elsewhere\nerr = torch.norm(w)\n",
}


@pytest.mark.parametrize("source", TRIGGER_REJECTED.values(), ids=TRIGGER_REJECTED.keys())
def test_trigger_rejects_clean_look_alikes(source: str) -> None:
    """Speed: training code that mentions basins, norms and means is not parsed."""
    assert not EuclideanBasinDistance.could_match(source, Config())
    assert not check_text("geo.py", source, Config(), [EuclideanBasinDistance]).findings
