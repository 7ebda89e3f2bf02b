"""QIG006 euclidean-basin-distance on realistic research code."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.engine.checker import check_text
from qig_guard.rules.qig006_euclidean_basin_distance import EuclideanBasinDistance


def flagged_lines(source: str, config: Config | None = None) -> list[int]:
    return [f.line for f in rule_findings(EuclideanBasinDistance, source, config)]


FLAGGED = {
    "difference_bound_at_module_level": """
        import torch

        delta = current_basin - target_basin


        def report():
            return torch.norm(delta)
    """,
    "difference_bound_in_a_module_block": """
        import torch

        try:
            import helpers
        except ImportError:
            delta = current_basin - target_basin


        def report():
            return torch.norm(delta)
    """,
    "cosine_of_a_summed_product": """
        def similarity(basin_a, basin_b):
            return (basin_a * basin_b).sum() / (basin_a.norm() * basin_b.norm())
    """,
    "cosine_of_a_summed_product_np": """
        import numpy as np

        def similarity(basin_a, basin_b):
            return np.sum(basin_a * basin_b) / (np.linalg.norm(basin_a) * np.linalg.norm(basin_b))
    """,
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
    "euclidean_inside_fisher_named_method": """
        import torch

        class FisherMetric:
            def distance(self, current_basin, target_basin):
                return torch.norm(current_basin - target_basin)
    """,
    "hand_rolled_norm_before_difference_is_renormalised": """
        import torch

        def push(source_basin, target):
            target_basin = target.get_basin()
            direction = source_basin - target_basin
            gap = torch.sqrt((direction * direction).sum())
            direction = torch.nn.functional.normalize(direction, dim=0)
            return target_basin + 0.1 * direction, gap
    """,
    "identity_fisher_diagonal_keyword": """
        import torch

        def consolidate(model, basin_point, geodesic):
            target = model.basin_matcher.target_basin
            return geodesic.diagonal_fisher_distance(
                basin_point, target, fisher_diagonal=torch.ones_like(basin_point)
            )
    """,
    "arccos_of_normalised_dot_in_fisher_named_method": """
        import numpy as np

        class Consolidator:
            def _fisher_rao_distance(self, a, b):
                a_unit = a / (np.linalg.norm(a) + 1e-10)
                b_unit = b / (np.linalg.norm(b) + 1e-10)
                cos = np.clip(np.dot(a_unit, b_unit), 0.0, 1.0)
                return float(np.arccos(cos))
    """,
    "angle_of_dot_over_norms": """
        import numpy as np

        def basin_distance(a, b):
            a = np.asarray(a, dtype=np.float32)
            b = np.asarray(b, dtype=np.float32)
            na = float(np.linalg.norm(a))
            nb = float(np.linalg.norm(b))
            c = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
            return float(np.arccos(c))
    """,
    "chordal_under_fisher_name_with_normalising_helper": """
        import numpy as np

        def unit_np(v):
            length = np.sqrt(np.sum(v * v, axis=-1, keepdims=True))
            return v / (length + 1e-10)

        def fisher_distance_np(a, b):
            a_unit = unit_np(a.flatten())
            b_unit = unit_np(b.flatten())
            cos = np.clip(np.dot(a_unit, b_unit), -1.0, 1.0)
            return float(np.sqrt(2.0 * (1.0 - cos)))
    """,
    "clamped_chordal": """
        import torch

        def bures_distance(a, b):
            cos = torch.dot(torch.nn.functional.normalize(a, dim=0),
                            torch.nn.functional.normalize(b, dim=0))
            d2 = 2.0 * (1.0 - cos)
            return torch.sqrt(torch.clamp(d2, min=1e-8))
    """,
    "one_minus_cosine_of_basins": """
        import numpy as np

        def drift(ocean_basin, active_basin):
            cos = ocean_basin @ active_basin / (
                np.linalg.norm(ocean_basin) * np.linalg.norm(active_basin)
            )
            return 1 - cos
    """,
    "angle_method_form_torch": """
        import torch.nn.functional as F

        def spread(current_basin, target_basin):
            u = F.normalize(current_basin, dim=-1)
            v = F.normalize(target_basin, dim=-1)
            return (u * v).sum().clamp(-1, 1).acos()
    """,
    "norm_used_as_divisor_and_reported": """
        import numpy as np

        def push(current_basin, target_basin, log):
            gap = target_basin - current_basin
            norm = np.linalg.norm(gap)
            log["basin_distance"] = float(norm)
            return gap / norm
    """,
    "chordal_floored_with_max_in_fisher_method": """
        import numpy as np

        class Monitor:
            def _compute_fisher_distance(self, a, b):
                na, nb = np.linalg.norm(a), np.linalg.norm(b)
                if na < 1e-8 or nb < 1e-8:
                    return 0.0
                cos = np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0)
                d2 = 2.0 * (1.0 - cos)
                return float(np.sqrt(max(d2, 1e-8)))
    """,
    "distance_helper_whose_caller_passes_basins": """
        import numpy as np

        class Kernel:
            def _dist(self, x, y):
                return float(np.linalg.norm(x - y))

            def resonance(self, other):
                return 1.0 / (1.0 + self._dist(self.basin_coords, other.basin_coords))
    """,
    "norm_turned_into_similarity": """
        import torch

        def resonance(self, other):
            gap = (self.basin_coords - other.basin_coords).norm().item()
            return 1.0 / (1.0 + gap)
    """,
    "math_dist": """
        import math

        gap = math.dist(ocean_basin, active_basin)
    """,
    "torch_cosine_similarity_top_level": """
        import torch

        sim = torch.cosine_similarity(current_basin, target_basin, dim=0)
    """,
    "scipy_cdist_default_metric": """
        from scipy.spatial.distance import cdist

        pairwise = cdist(observer_basins, observer_basins)
    """,
    "sqrt_of_difference_matmul_itself": """
        import numpy as np

        def gap(current_basin, target_basin):
            d = current_basin - target_basin
            return np.sqrt(d @ d)
    """,
    "sqrt_of_summed_squared_absolute_difference": """
        import numpy as np

        d = np.sqrt(np.sum(np.abs(basin_a - basin_b) ** 2))
    """,
    "sklearn_cosine_of_listed_basins": """
        from sklearn.metrics.pairwise import cosine_similarity

        def similarity(basin_a, basin_b):
            return cosine_similarity([basin_a], [basin_b])[0][0]
    """,
    "cosine_by_dot_over_norms_for_ranking": """
        import numpy as np

        def nearest(query_basin, stored_basins):
            scores = [
                np.dot(query_basin, b) / (np.linalg.norm(query_basin) * np.linalg.norm(b))
                for b in stored_basins
            ]
            return int(np.argmax(scores))
    """,
    "cosine_of_normalised_basins_matmul": """
        import torch.nn.functional as F

        def alignment(current_basin, target_basin):
            return F.normalize(current_basin, dim=0) @ F.normalize(target_basin, dim=0)
    """,
    "normaliser_helper_through_normalize": """
        import torch
        import torch.nn.functional as F

        def _unit(v):
            return F.normalize(v, dim=-1)

        def gap(ocean_basin, other_basin):
            return 1 - torch.dot(_unit(ocean_basin), _unit(other_basin))
    """,
    "self_normaliser_method": """
        import numpy as np

        class Tracker:
            def _unit(self, x):
                return x / np.linalg.norm(x)

            def gap(self, ocean_basin, other_basin):
                dot = np.dot(self._unit(ocean_basin), self._unit(other_basin))
                return np.arccos(np.clip(dot, -1, 1))
    """,
    "cosine_of_basins_normalised_by_a_helper_without_a_norm_in_sight": """
        import numpy as np

        def l2(v):
            return v / np.linalg.norm(v)

        def similarity(ocean_basin, other_basin):
            c = np.dot(l2(ocean_basin), l2(other_basin))
            return c
    """,
    "cosine_of_basins_normalised_by_a_helper_whose_divisor_says_norm": """
        import numpy as np

        def scale(v):
            return v / normalize_factor(v)

        def similarity(ocean_basin, other_basin):
            return np.dot(scale(ocean_basin), scale(other_basin))
    """,
    "module_level_cosine_of_basins_normalised_by_a_helper": """
        import numpy as np

        def l2(v):
            return v / np.linalg.norm(v)

        c = np.dot(l2(ocean_basin), l2(other_basin))
    """,
    "chordal_as_two_minus_twice_the_dot_under_a_half_power": """
        import numpy as np

        d = (2 - 2 * (basin_a @ basin_b)) ** 0.5
    """,
    "chordal_of_a_dot_bound_to_a_name": """
        import numpy as np

        def gap(basin_a, basin_b):
            c = np.dot(basin_a, basin_b)
            return (2 - 2 * c) ** 0.5
    """,
    "cosine_over_lengths_taken_as_half_powers": """
        import numpy as np

        def similarity(basin_a, basin_b):
            na = (basin_a @ basin_a) ** 0.5
            nb = (basin_b @ basin_b) ** 0.5
            return np.dot(basin_a, basin_b) / (na * nb)
    """,
    "cosine_with_its_matmul_continued_on_the_next_line": """
        import torch

        class Matcher:
            @torch.no_grad()
            def similarity(self, current_basin, target_basin):
                dot = (current_basin
                       @ target_basin)
                return dot / (current_basin.norm() * target_basin.norm())
    """,
    "chordal_under_a_parenthesised_half_power": """
        import numpy as np

        d = (2 - 2 * (basin_a @ basin_b)) ** (.5)
    """,
    "distance_helper_that_a_method_calls_with_basins": """
        import numpy as np

        def pair_distance(a, b):
            return float(np.linalg.norm(a - b))


        class Tracker:
            def step(self, state):
                drift = pair_distance(state.current_basin, self.anchor_basin)
                return drift
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
    """,
    "bhattacharyya_angle_in_fisher_function": """
        import numpy as np

        def fisher_rao_distance(p, q, eps=1e-12):
            p = np.clip(p, eps, None) / np.sum(np.clip(p, eps, None))
            q = np.clip(q, eps, None) / np.sum(np.clip(q, eps, None))
            bc = np.sum(np.sqrt(p * q))
            return float(np.arccos(np.clip(bc, 0.0, 1.0)))
    """,
    "hellinger_in_fisher_function": """
        import torch

        def fisher_geodesic_distance(p, q):
            return 2 * torch.norm(torch.sqrt(p) - torch.sqrt(q))
    """,
    "arccos_of_raw_dot_in_sqrt_coordinates": """
        import numpy as np

        def _fisher_distance(self, a, b):
            inner = np.clip(np.dot(a, b), 0.0, 1.0)
            return float(np.arccos(inner))
    """,
    "slerp_angle_between_unit_basins": """
        import numpy as np

        def slerp_basins(start_basin, end_basin, t):
            a = start_basin / np.linalg.norm(start_basin)
            b = end_basin / np.linalg.norm(end_basin)
            omega = np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))
            return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    """,
    "cosine_of_token_embeddings": """
        import numpy as np

        def similarity(query_vec, doc_vec):
            cos = np.dot(query_vec, doc_vec) / (np.linalg.norm(query_vec) * np.linalg.norm(doc_vec))
            return 1.0 - cos
    """,
    "one_minus_a_probability": """
        def keep(basin, dropout):
            return basin * (1 - dropout)
    """,
    "difference_scaled_to_a_unit_direction": """
        import numpy as np

        def step_toward(current_basin, target, G):
            direction = target - current_basin
            norm = np.linalg.norm(direction)
            if norm < 1e-10:
                return current_basin
            direction = direction / (norm + 1e-12)
            return current_basin + 0.1 * np.linalg.solve(G, direction)
    """,
    "identity_metric_on_random_vectors_in_a_test": """
        import numpy as np

        def test_fisher_rao_distance_diagonal():
            basin1 = np.random.randn(64)
            basin2 = np.random.randn(64)
            metric = np.ones(64)
            assert fisher_rao_distance(basin1, basin2, metric=metric) > 0
    """,
    "distance_helper_called_with_embeddings": """
        import numpy as np

        def _dist(x, y):
            return float(np.linalg.norm(x - y))

        def nearest(query_vec, vectors, basin_dim=64):
            return min(vectors, key=lambda v: _dist(query_vec, v))
    """,
    "scipy_cdist_other_metric": """
        from scipy.spatial.distance import cdist

        pairwise = cdist(observer_basins, observer_basins, metric="cityblock")
    """,
    "l1_of_absolute_difference": """
        import numpy as np

        d = np.sum(np.abs(basin_a - basin_b))
    """,
    "fisher_weighted_distance_in_fisher_method": """
        import torch

        class FisherMetric:
            def distance(self, current_basin, target_basin):
                return torch.norm(self.fisher_diag.sqrt() * (current_basin - target_basin))
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
    "helper_not_named_a_distance_called_with_basins": """
        import numpy as np

        def gap(a, b):
            # the distance between the two, in raw units
            return float(np.linalg.norm(a - b))


        class Tracker:
            def step(self, state):
                return gap(state.current_basin, self.anchor_basin)
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
    assert not rule_findings(EuclideanBasinDistance, "basin = load()\nprint(basin)\n", Config())
    assert not rule_findings(EuclideanBasinDistance, "torch.norm(a - b)\n", Config())
    assert gate_passes(EuclideanBasinDistance, "torch.norm(basin - b)\n", Config())


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
    "fisher_named_function_without_basin_text": (
        "import numpy as np\n\ndef fisher_dist(a, b):\n    return np.linalg.norm(a - b)\n"
    ),
    "one_minus_dot_over_norm_names": (
        "import numpy as np\n\ndef drift(basin_a, basin_b):\n"
        "    dot = np.dot(basin_a, basin_b)\n"
        "    na, nb = np.linalg.norm(basin_a), np.linalg.norm(basin_b)\n"
        "    cos = dot / (na * nb)\n    return 1 - cos\n"
    ),
    "angle_of_normalised_basins": (
        "import torch\nimport torch.nn.functional as F\n\n"
        "u = F.normalize(active_basin, dim=0)\nv = F.normalize(ocean_basin, dim=0)\n"
        "angle = torch.acos(torch.clamp(u @ v, -1, 1))\n"
    ),
    "distance_helper_called_with_basins": (
        "import numpy as np\n\ndef _dist(x, y):\n    return np.linalg.norm(x - y)\n\n"
        "gap = _dist(ocean_basin, active_basin)\n"
    ),
}


@pytest.mark.parametrize("source", TRIGGER_FLAGGED.values(), ids=TRIGGER_FLAGGED.keys())
def test_trigger_passes_every_flagged_shape(source: str) -> None:
    for case in (source, *FLAGGED.values()):
        assert gate_passes(EuclideanBasinDistance, textwrap.dedent(case), Config())
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
    "one_minus_a_probability_beside_a_norm": (
        "import numpy as np\nbasin = load()\nscale = np.linalg.norm(w)\nkeep = 1 - dropout\n"
    ),
}


@pytest.mark.parametrize("source", TRIGGER_REJECTED.values(), ids=TRIGGER_REJECTED.keys())
def test_trigger_rejects_clean_look_alikes(source: str) -> None:
    """Speed: training code that mentions basins, norms and means is not parsed."""
    assert not rule_findings(EuclideanBasinDistance, source, Config())
    assert not check_text("geo.py", source, Config(), [EuclideanBasinDistance]).findings


# -- value-keeping methods and random sources are facts shared with other rules (issue 16) --


def test_a_difference_through_a_value_keeping_method_is_still_a_difference() -> None:
    assert flagged_lines("""
        import torch

        def drift(basin_a, basin_b):
            return torch.norm((basin_a - basin_b).contiguous())
    """) == [5]


def test_basins_drawn_from_any_torch_random_source_are_test_fixtures() -> None:
    assert (
        flagged_lines("""
        import torch

        def test_distance():
            basin_a = torch.normal(0.0, 1.0, (64,))
            basin_b = torch.normal(0.0, 1.0, (64,))
            assert torch.norm(basin_a - basin_b) > 0
    """)
        == []
    )


def test_gate_skips_normalisation_with_an_epsilon_or_a_negative_axis() -> None:
    normalise = """
        import numpy as np

        def unit_basin(basin):
            return basin / (np.linalg.norm(basin, axis=-1, keepdims=True) + 1e-8)
    """
    assert not gate_passes(EuclideanBasinDistance, textwrap.dedent(normalise))
    assert not rule_findings(EuclideanBasinDistance, normalise)
    difference = normalise.replace("+ 1e-8", "- anchor_basin")
    assert gate_passes(EuclideanBasinDistance, textwrap.dedent(difference))


def test_gate_reads_decorators_and_squares_as_neither_dot_nor_root() -> None:
    """`@` of a decorator is no matrix product and `** 2` no root: a decorated method
    that squares a basin beside a root is not parsed."""
    source = """
        import torch

        class Block:
            @torch.no_grad()
            def forward(self, hidden):
                basin = self.proj(hidden)
                return torch.sqrt(basin ** 2 + 1.0)
    """
    assert not gate_passes(EuclideanBasinDistance, textwrap.dedent(source))
    as_product = source.replace("basin ** 2", "basin @ basin")
    assert gate_passes(EuclideanBasinDistance, textwrap.dedent(as_product))
