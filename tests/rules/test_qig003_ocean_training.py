"""QIG003 ocean-training: realistic flagged and quiet shapes, fixes and the trigger."""

from __future__ import annotations

import textwrap

import pytest
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.engine.fixer import fix_source
from qig_guard.rules.qig003_ocean_training import OceanTraining


def _lines(source: str, config: Config | None = None) -> list[int]:
    return [f.line for f in rule_findings(OceanTraining, source, config)]


FLAGGED = {
    "adam-aliased-import": """
        from torch.optim import AdamW as Opt
        ocean_opt = Opt(ocean.parameters(), lr=1e-4)  # here
    """,
    "optim-module-alias": """
        import torch.optim as optim
        class Constellation:
            def setup(self):
                self.opt = optim.SGD(self.ocean.basin_matcher.parameters(), lr=0.1)  # here
    """,
    "param-groups": """
        import torch
        groups = [
            {"params": active.parameters(), "lr": 3e-4},
            {"params": ocean_model.parameters(), "lr": 1e-5},
        ]
        optimizer = torch.optim.Adam([  # here
            {"params": active.parameters()},
            {"params": ocean_model.parameters(), "lr": 1e-5},
        ])
    """,
    "parameters-through-locals": """
        import torch
        def configure(active, ocean, lr):
            frozen = list(ocean.parameters())
            groups = [{"params": active.parameters()}, {"params": frozen, "lr": lr * 0.1}]
            return torch.optim.AdamW(groups)  # here
    """,
    "chained-parameters": """
        import itertools, torch
        opt = torch.optim.Adam(  # here
            itertools.chain(active.parameters(), ocean.parameters()), lr=1e-4
        )
    """,
    "custom-optimizer-class": """
        from qig.optim import DiagonalFisherOptimizer
        ocean_optimizer = DiagonalFisherOptimizer(list(ocean.parameters()), lr=1e-3)  # here
    """,
    "optimizer-factory": """
        def build(ocean_kernel):
            return make_optimizer(ocean_kernel, lr=1e-4)  # here
        def build_local(config):
            ocean_model = OceanKernel(config)
            return create_optimizer(model=ocean_model)  # here
    """,
    "generator-over-parameters": """
        from torch import optim
        opt = optim.Adam(p for p in ocean.parameters() if p.ndim > 1)  # here
    """,
    "ocean-step-in-loop": """
        for batch in loader:
            loss = criterion(active(batch), batch.labels)
            loss.backward()
            optimizer.step()
            ocean_optimizer.step()  # here
    """,
    "nested-attribute-step": """
        class Trainer:
            def train_step(self):
                self.ocean.optimizer.step()  # here
    """,
    "amp-step": """
        scaler.step(ocean.optimizer)  # here
        scaler.update()
    """,
    "amp-backward": """
        scaler.scale(ocean_loss).backward()  # here
    """,
    "scaled-loss-backward": """
        (ocean_loss / accumulation_steps).backward()  # here
    """,
    "attribute-loss-backward": """
        class Loop:
            def run(self):
                self.ocean_loss.backward(retain_graph=True)  # here
    """,
    "train-mode": """
        def wake(self):
            self.ocean.train()  # here
    """,
    "train-mode-true": """
        ocean_model.train(mode=True)  # here
    """,
    "requires-grad-default": """
        ocean.basin_matcher.requires_grad_()  # here
    """,
    "requires-grad-named-parameters": """
        for name, param in ocean.named_parameters():
            if "basin" in name:
                param.requires_grad = True  # here
    """,
    "requires-grad-call-in-loop": """
        for p in self.ocean.parameters():
            p.requires_grad_(True)  # here
    """,
    "requires-grad-attribute": """
        ocean.basin.requires_grad = True  # here
    """,
    "load-optimizer-state": """
        ocean.optimizer.load_state_dict(ckpt["ocean_optimizer"])  # here
    """,
    "frozen-class-step-and-backward": """
        import torch
        class OceanWatcher(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.optimizer = torch.optim.Adam(self.parameters())  # here
            def observe(self, batch):
                loss = self(batch).mean()
                loss.backward()  # here
                self.optimizer.step()  # here
    """,
    "frozen-class-amp": """
        class OceanKernel:
            def update(self, loss):
                self.scaler.step(self.optimizer)  # here
    """,
    "frozen-class-load-optimizer": """
        class OceanKernel:
            def restore(self, ckpt):
                self.optimizer.load_state_dict(ckpt["opt"])  # here
    """,
}

QUIET = {
    "eval-and-no-grad": """
        import torch
        ocean.eval()
        ocean.requires_grad_(False)
        with torch.no_grad():
            ocean_out = ocean(batch)
            ocean_basin = ocean.basin.detach().clone()
    """,
    "freeze-loop": """
        for p in ocean.parameters():
            p.requires_grad = False
            p.requires_grad_(False)
    """,
    "save-optimizer-state": """
        import torch
        torch.save({"ocean_opt": ocean.optimizer.state_dict()}, path)
    """,
    "update-like-names": """
        ocean.epoch_update()
        ocean.step_counter += 1
        ocean.step()
        ocean_scheduler.step()
    """,
    "active-training": """
        import torch
        optimizer = torch.optim.AdamW(active.parameters(), lr=3e-4, weight_decay=ocean_decay)
        optimizer = torch.optim.Adam([{"params": active.parameters(), "lr": ocean_lr}])
        loss = fisher_distance(active_basin, ocean_basin.detach())
        loss.backward()
        optimizer.step()
        active.train()
    """,
    "scheduler-over-ocean-optimizer": """
        from torch.optim.lr_scheduler import CosineAnnealingLR
        sched = CosineAnnealingLR(ocean_optimizer, T_max=100)
    """,
    "rebound-local": """
        import torch
        def configure(active, ocean):
            params = list(ocean.parameters())
            params = list(active.parameters())
            return torch.optim.AdamW(params)
    """,
    "factory-with-ocean-named-setting": """
        def configure(active):
            ocean_lr = 1e-5
            return build_optimizer(active, ocean_lr)
    """,
    "train-false": """
        ocean.train(False)
        ocean.train(mode=False)
    """,
    "oceanography-is-not-ocean": """
        import torch
        opt = torch.optim.Adam(oceanography_model.parameters())
        oceanography_model.train()
        oceanography_loss.backward()
    """,
    "shadowed-optimizer-class": """
        def Adam(params):
            return list(params)
        groups = Adam(ocean.parameters())
    """,
    "ocean-coordinator-trains-active": """
        import torch
        class OceanCoordinator:
            def __init__(self, active):
                self.active_optimizer = torch.optim.Adam(active.parameters())
            def update(self, active_loss):
                active_loss.backward()
                self.active_optimizer.step()
                self.scheduler.step()
    """,
    "non-frozen-class-plain-loss": """
        class ObserverGary:
            def update(self, loss):
                loss.backward()
                self.optimizer.step()
    """,
    "requires-grad-on-other-model": """
        for p in active.parameters():
            p.requires_grad = True
        obs.requires_grad_(True)
    """,
}


# The Ocean's basin moved toward the others: the Ocean is trained without an optimizer.
BASIN_MOVES = {
    "moving-average-toward-the-mean": """
        import numpy as np
        ocean.basin = 0.95 * ocean.basin + 0.05 * np.mean(observer_basins, axis=0)  # here
    """,
    "step-toward-the-mean-in-place-operator": """
        ocean.basin += 0.05 * (mean_basin - ocean.basin)  # here
    """,
    "lerp-in-place-on-a-parameter": """
        def sync(ocean_basin, active_basin):
            ocean_basin.lerp_(active_basin, 0.05)  # here
    """,
    "mul-add-chain-on-the-matcher-target": """
        def drift(ocean, centroid):
            ocean.basin_matcher.target_basin.mul_(0.9).add_(0.1 * centroid)  # here
    """,
    "slerp-helper-through-a-local": """
        def nudge(main_basin, kernels):
            ocean_kernel = kernels["ocean"]
            stepped = slerp_sqrt(ocean_kernel.basin, main_basin, t=0.05)
            ocean_kernel.basin = stepped  # here
    """,
    "alias-of-the-basin-updated-in-place": """
        def follow(ocean, target):
            b = ocean.basin
            b.lerp_(target, 0.1)  # here
    """,
    "ocean-class-updates-its-own-basin": """
        class OceanObserver:
            def observe(self, centroid, alpha=0.1):
                self.consensus_basin = (1 - alpha) * self.consensus_basin + alpha * centroid  # here
    """,
    "mean-of-itself-and-an-observer": """
        ocean.basin = frechet_mean([ocean.basin, gary.basin])  # here
    """,
    "matcher-target-data-blended": """
        ocean.basin_matcher.target_basin.data = ocean.basin_matcher.target_basin + d  # here
    """,
    "copy-of-a-blend-into-the-basin": """
        import torch
        def step(ocean, others):
            with torch.no_grad():
                new = torch.lerp(ocean.basin, others.mean(0), 0.05)
                ocean.basin.copy_(new)  # here
    """,
}
FLAGGED.update(BASIN_MOVES)
QUIET.update(
    {
        "detached-copy-moved-not-the-ocean": """
            def sync(ocean, observer_basin):
                ocean_basin = ocean.basin.detach().clone()
                ocean_basin.lerp_(observer_basin, 0.05)
                return ocean_basin
        """,
        "observer-moved-toward-the-ocean": """
            def sync(ocean, observer):
                observer.basin = 0.95 * observer.basin + 0.05 * ocean.basin.detach()
                observer.basin_matcher.target_basin.lerp_(ocean.basin, 0.05)
        """,
        "ocean-basin-read-and-measured": """
            import torch
            def measure(ocean, basins):
                with torch.no_grad():
                    d = fisher_distance(ocean.basin, basins.mean(0))
                    spread = ocean.basin - basins.mean(0)
                return d, spread
        """,
        "ocean-basin-initialised-and-normalised": """
            import numpy as np
            class OceanMetaObserver:
                def __init__(self, dim):
                    self.ocean_basin = np.zeros(dim)
                    self.basin_dim = dim
                def reset(self, basin):
                    self.ocean_basin = basin / basin.sum()
                    self.ocean_basin = self.ocean_basin - self.ocean_basin.mean()
        """,
        "spec-sync-template": """
            def sync_constellation_basins(active_basin, observer_basins, ocean_basin, w=0.1):
                ocean_basin_updated = ocean_basin.detach().clone()
                updated = []
                for obs_basin in observer_basins:
                    direction = active_basin.detach() - obs_basin
                    updated.append(obs_basin + w * direction)
                return ocean_basin_updated, updated
        """,
        "ocean-basin-set-to-the-consensus-of-the-others": """
            class OceanObserver:
                def observe(self, basins):
                    self.consensus_basin = geodesic_mean(basins)
        """,
        "ocean-class-scales-a-coefficient": """
            class OceanNeuromodulator:
                def modulate(self, bias):
                    bias.basin_attraction *= 1.3
                    bias.basin_attraction += self.boost
        """,
    }
)


def _expected(source: str) -> list[int]:
    lines = textwrap.dedent(source).splitlines()
    return [number for number, line in enumerate(lines, 1) if line.rstrip().endswith("# here")]


@pytest.mark.parametrize("source", FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str) -> None:
    assert _lines(source) == _expected(source)


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_not_flagged(source: str) -> None:
    assert _lines(source) == []


def test_frozen_models_come_from_config() -> None:
    source = "reference_optimizer.step()\nocean_optimizer.step()\n"
    assert _lines(source, Config(frozen_models=("reference",))) == [1]


def test_trigger_needs_a_frozen_name() -> None:
    assert not rule_findings(OceanTraining, "optimizer.step()\n", Config())
    assert gate_passes(OceanTraining, "ocean_optimizer.step()\n", Config())


# Shapes the trigger must keep although the frozen name is not next to the call.
TRIGGER_KEEPS = {
    **FLAGGED,
    "multi-line-receiver": "x = (ocean_loss\n     / steps).backward()\n",
    "continued-chain": "(self.ocean\n .optimizer.step())\n",
    "dot-ends-previous-line": "(self.ocean.\n optimizer.step())\n",
    "module-alias": "import torch.optim as O\nopt = O.Adam(ocean.parameters())\n",
    "parenthesized-import": "from torch.optim import (\n    Adam as A,\n)\nA(ocean.parameters())\n",
    "local-chain": "a = list(ocean.parameters())\nb = a\nopt = torch.optim.Adam(b)\n",
    "multi-line-call": "torch.optim.Adam(\n    [{'params': ocean.parameters()}],\n)\n",
    "loop-variable": "ps = list(ocean.parameters())\nfor p in ps:\n    p.requires_grad_()\n",
}


@pytest.mark.parametrize("source", TRIGGER_KEEPS.values(), ids=TRIGGER_KEEPS.keys())
def test_trigger_keeps_every_flagged_shape(source: str) -> None:
    assert _lines(source)  # the rule flags it, so the trigger must let it through
    assert gate_passes(OceanTraining, textwrap.dedent(source), Config())


# Files that mention the Ocean everywhere but cannot train it: the trigger skips their
# parse (speed), because no receiver or optimizer argument names the frozen model.
TRIGGER_SKIPS = {
    "training-active-beside-ocean": """
        import torch
        def train(model, ocean, loader, lr):
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
            ocean.eval()
            for batch in loader:
                with torch.no_grad():
                    ocean_basin = ocean(batch).detach()
                loss = fisher_distance(model(batch), ocean_basin)
                (loss + 0.1 * loss).backward()
                optimizer.step()
                optimizer.zero_grad()
            model.train(True)
    """,
    "checkpoint-restore": """
        def restore(model, optimizer, ocean, path):
            checkpoint = torch.load(path, weights_only=True)
            model.load_state_dict(checkpoint["model_state_dict"])
            optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
            ocean.requires_grad_(False)
            ocean.train(False)
    """,
    "scheduler-over-ocean-optimizer": QUIET["scheduler-over-ocean-optimizer"],
    "ocean-class-without-training": """
        class OceanMonitor:
            def record(self, model):
                return fisher_distance(model.basin, self.ocean.basin.detach())
        def train(model, optimizer, loss):
            loss.backward()
            optimizer.step()
    """,
}


@pytest.mark.parametrize("source", TRIGGER_SKIPS.values(), ids=TRIGGER_SKIPS.keys())
def test_trigger_skips_look_alikes(source: str) -> None:
    source = textwrap.dedent(source)
    assert _lines(source) == []
    assert not rule_findings(OceanTraining, source, Config())


def _fix(source: str, unsafe: bool) -> str:
    return fix_source("train.py", source, Config(), [OceanTraining], unsafe=unsafe).source


def test_train_fix_is_unsafe_and_uses_eval() -> None:
    source = "self.ocean.train(True)\n"
    assert _fix(source, unsafe=False) == source
    assert _fix(source, unsafe=True) == "self.ocean.eval()\n"


def test_requires_grad_fixes() -> None:
    source = "ocean.requires_grad_()\nfor p in ocean.parameters():\n    p.requires_grad = True\n"
    assert _fix(source, unsafe=True) == (
        "ocean.requires_grad_(False)\nfor p in ocean.parameters():\n    p.requires_grad = False\n"
    )


def test_optimizer_has_no_fix() -> None:
    source = "import torch\nopt = torch.optim.Adam(ocean.parameters())\nocean_opt.step()\n"
    result = check_source("train.py", source.encode(), Config(), [OceanTraining])
    assert len(result.findings) == 2
    assert all(finding.fix is None for finding in result.findings)


# -- optimizer words are one fact shared with QIG001 and QIG007 (issue 16) -------------


def test_an_ocean_optimizer_named_after_its_class_is_an_optimizer() -> None:
    source = """
        class Trainer:
            def step(self, loss):
                loss.backward()
                self.ocean_adam.step()  # here
    """
    assert _lines(source) == _expected(source) == [5]
    assert gate_passes(OceanTraining, textwrap.dedent(source), Config())


def test_an_ocean_attribute_with_no_optimizer_word_is_quiet() -> None:
    assert (
        _lines("""
        class Trainer:
            def step(self, loss):
                loss.backward()
                self.ocean_scheduler.step()
    """)
        == []
    )
