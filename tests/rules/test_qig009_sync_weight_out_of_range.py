"""QIG009 sync-weight-out-of-range: literal sync weights outside the configured range."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.rules.qig009_sync_weight_out_of_range import SyncWeightOutOfRange


def findings(source: str, config: Config | None = None) -> list[tuple[int, str]]:
    return [(f.line, f.message) for f in rule_findings(SyncWeightOutOfRange, source, config)]


def lines(source: str, config: Config | None = None) -> list[int]:
    return [line for line, _ in findings(source, config)]


FLAGGED = {
    "keyword-argument": (
        "coordinator.sync(active_basin, observer_basins, sync_weight=0.5)\n",
        [1],
    ),
    "keyword-in-multiline-call": (
        """
        ocean_basin, observers = sync_constellation_basins(
            active_basin,
            observer_basins,
            ocean_basin,
            sync_weight=0.25,  # line 6
        )
        """,
        [6],
    ),
    "parameter-default-in-method": (
        """
        class ConstellationCoordinator:
            def sync_basins(self, active_basin, observers, *, sync_weight: float = 0.9):
                ...
        """,
        [3],
    ),
    "negative-and-integer-literals": (
        """
        def sync(active_basin, observers, sync_weight=-0.1):
            return sync_all(active_basin, observers, observer_sync_weight=1)
        """,
        [2, 3],
    ),
    "below-the-range": ("SYNC_WEIGHT = 0.01\n", [1]),
    "dataclass-field-and-attribute": (
        """
        from dataclasses import dataclass

        @dataclass
        class SyncConfig:
            sync_weight: float = 0.3  # line 6

        def setup(self):
            self.sync_weight = 0.5  # line 9
        """,
        [6, 9],
    ),
    "config-dict": ('config = {"sync_weight": 0.2, "lr": 0.5}\n', [1]),
    "argparse-default": (
        """
        parser.add_argument("--sync-weight", type=float, default=0.5)  # line 2
        parser.add_argument("-s", "--observer_sync_weight", default=1.0)  # line 3
        """,
        [2, 3],
    ),
    "torch-lerp-alias": (
        """
        from torch import lerp as interpolate

        new_basin = interpolate(obs_basin, active_basin.detach(), 0.9)
        """,
        [4],
    ),
    "lerp-method-and-keyword": (
        """
        for obs_basin in observer_basins:
            obs_basin.lerp_(active_basin.detach(), 0.5)  # line 3
            obs_basin.lerp(end=active_basin, weight=1.5)  # line 4
        """,
        [3, 4],
    ),
    "hand-written-interpolation": (
        """
        for obs_basin in observer_basins:
            new = obs_basin + 0.5 * (active_basin - obs_basin)  # line 3
            new = obs_basin + (active_basin - obs_basin) * 0.75  # line 4
        """,
        [3, 4],
    ),
}


@pytest.mark.parametrize(("source", "expected"), FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str, expected: list[int]) -> None:
    assert lines(textwrap.dedent(source)) == expected


NOT_FLAGGED = {
    "spec-template": """
        def sync_constellation_basins(active_basin, observer_basins, ocean_basin,
                                      sync_weight: float = 0.1):
            for obs_basin in observer_basins:
                direction = active_basin.detach() - obs_basin
                obs_basin_new = obs_basin + sync_weight * direction
        """,
    "range-ends-inclusive": """
        sync(a_basin, sync_weight=0.05)
        sync(a_basin, sync_weight=0.1)
        sync(a_basin, sync_weight=(0.075))
        """,
    "non-literals": """
        sync(active_basin, sync_weight=args.sync_weight)
        sync(active_basin, sync_weight=cfg["sync_weight"] * 2)
        SYNC_WEIGHT = float(os.environ.get("SYNC_WEIGHT", "0.5"))
        def sync(active_basin, sync_weight=DEFAULT_SYNC):
            ...
        """,
    "argparse-in-range-or-other-option": """
        parser.add_argument("--sync-weight", type=float, default=0.08)
        parser.add_argument("--weight-decay", type=float, default=0.5)
        parser.add_argument("--sync-weight", type=float, default=DEFAULT_SYNC)
        """,
    "other-weights": """
        loss = criterion(x, y, weight=0.5)
        ema_weight = 0.99
        sync_every = 100
        def sync(active_basin, momentum=0.9, lr=0.5):
            ...
        config = {"weight": 0.5, "sync": 1}
        """,
    "lerp-not-on-basins": """
        import torch

        ema = torch.lerp(ema_params, params, 0.9)
        weights.lerp_(target_weights, 0.5)
        """,
    "lerp-on-basins-with-tensor-weight": """
        import torch

        new_basin = torch.lerp(obs_basin, active_basin, torch.tensor(0.9))
        """,
    "interpolation-not-on-basins": """
        x = start + 0.5 * (end - start)
        y = obs_basin + 0.5 * (active_basin - other_basin)
        """,
}


@pytest.mark.parametrize("source", NOT_FLAGGED.values(), ids=NOT_FLAGGED.keys())
def test_not_flagged(source: str) -> None:
    assert lines(textwrap.dedent(source)) == []


def test_range_comes_from_config() -> None:
    source = "sync(active_basin, sync_weight=0.3)\n"
    assert lines(source) == [1]
    assert lines(source, replace(Config(), sync_weight_range=(0.2, 0.5))) == []
    assert lines("sync(b, sync_weight=0.1)\n", replace(Config(), sync_weight_range=(0.2, 0.5)))


def test_message_gives_value_and_range_and_no_fix() -> None:
    result = check_source("s.py", b"sync(b, sync_weight=0.5)\n", Config(), [SyncWeightOutOfRange])
    (finding,) = result.findings
    assert "0.5" in finding.message and "[0.05, 0.1]" in finding.message
    assert finding.fix is None
    assert (finding.line, finding.column) == (1, 21)


def test_trigger() -> None:
    assert not rule_findings(SyncWeightOutOfRange, "weight = 0.5\n", Config())
    assert gate_passes(SyncWeightOutOfRange, "f(syncWeight=0.5)\n", Config())
    assert gate_passes(SyncWeightOutOfRange, "obs_basin.lerp_(active_basin, 0.5)\n", Config())
    assert not rule_findings(SyncWeightOutOfRange, "obs_basin.lerp_(a, 0.5)\n", Config())
    assert not rule_findings(SyncWeightOutOfRange, "b.lerp_(a, 0.5)\n", Config())


@pytest.mark.parametrize(("source", "expected"), FLAGGED.values(), ids=FLAGGED.keys())
def test_trigger_passes_every_flagged_case(source: str, expected: list[int]) -> None:
    assert gate_passes(SyncWeightOutOfRange, textwrap.dedent(source), Config())


IN_RANGE_LOOK_ALIKES = {
    "parameter-default": "def sync(a, obs, sync_weight: float = 0.05):\n    return a\n",
    "keyword": "sync_constellation_basins(a, obs, ocean, sync_weight=1e-1)\n",
    "config-entry": 'CONFIG = {"sync_weight": 0.1, "lr": 3e-4}\n',
    "comparison": "assert cfg.sync_weight == 0.5 or basin\n",
    "option-default-in-range": 'p.add_argument("--sync-weight", type=float, default=0.1)\n',
}


@pytest.mark.parametrize("source", IN_RANGE_LOOK_ALIKES.values(), ids=IN_RANGE_LOOK_ALIKES.keys())
def test_trigger_skips_in_range_look_alikes(source: str) -> None:
    """Speed: research code names sync weights and basins everywhere; a named sync
    weight needs a parse only when its literal is out of range."""
    assert lines(source) == []
    assert not rule_findings(SyncWeightOutOfRange, source, Config())


ARITHMETIC_LOOK_ALIKES = {
    "weight-from-variable": "new = [obs + sync_weight * (target - obs) for obs in obs_basins]\n",
    "loss-weighting": "(loss + 0.5 * basin_loss).backward()\n",
    "cosine-schedule": "basin_lr = 0.5 * (1.0 + math.cos(math.pi * progress))\n",
    "own-target-only": "self.basin = 0.5 * self.basin + 0.5 * self.target_basin\n",
}


@pytest.mark.parametrize(
    "source", ARITHMETIC_LOOK_ALIKES.values(), ids=ARITHMETIC_LOOK_ALIKES.keys()
)
def test_trigger_skips_arithmetic_without_another_model(source: str) -> None:
    """Speed: basin arithmetic is everywhere in research code; only text that may
    name another model's basin needs a parse."""
    assert lines(source) == []
    assert not rule_findings(SyncWeightOutOfRange, source, Config())


SHAPE_LOOK_ALIKES = {
    "sum-and-product-in-separate-statements": """
        def track(self, peer):
            scaled = 0.5 * peer.basin
            self.count = self.count + 1
        """,
    "augmented-sum-of-a-product": """
        def track(self, peer):
            self.basin += 0.5 * peer.basin
        """,
    "sum-of-a-matrix-product": "merged = own_basin + 0.5 @ other.basin\n",
    "blend-word-not-called": """
        def track(self, peer):
            blend_mode = peer.basin_blend
            self.mix_ratio = 2.0 * peer.basin.sum()
        """,
    "sync-without-a-weight": """
        def track(self, peer):
            self.last_sync = 3600 - peer.basin_age
        """,
}


@pytest.mark.parametrize("source", SHAPE_LOOK_ALIKES.values(), ids=SHAPE_LOOK_ALIKES.keys())
def test_trigger_reads_the_shape_the_rule_reads(source: str) -> None:
    """Speed: a `+` and a `*` anywhere, an interpolation word that names no call, or the
    word `sync` without `weight` cannot make an interpolation or a sync weight."""
    source = textwrap.dedent(source)
    assert not gate_passes(SyncWeightOutOfRange, source, Config())
    assert not rule_findings(SyncWeightOutOfRange, source, Config())


def test_arithmetic_near_another_models_basin_is_read_but_weight_decides() -> None:
    """The weight may be a constant defined anywhere, so the trigger passes the file."""
    source = "new = [obs + sync_weight * (active_basin - obs) for obs in obs_basins]\n"
    assert gate_passes(SyncWeightOutOfRange, source, Config())
    assert lines(source) == []


def test_trigger_joins_multi_line_statements() -> None:
    source = textwrap.dedent(
        """
        KEEP = 0.8

        def mix(self, peer):
            self.basin = (
                KEEP * self.basin  # own
                + (1 - KEEP) * peer.basin
            )
        """
    )
    assert gate_passes(SyncWeightOutOfRange, source, Config())
    assert lines(source) == [7]


def test_interpolation_trigger_needs_basins() -> None:
    hand_written = "new = obs_basin + 0.5 * (active_basin - obs_basin)\n"
    assert gate_passes(SyncWeightOutOfRange, hand_written, Config())
    assert not rule_findings(SyncWeightOutOfRange, "x = a + 0.5 * (b - a)\n", Config())


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=-2, max_value=2, allow_nan=False).map(lambda x: round(x, 4)))
def test_flagged_exactly_when_outside_the_range(weight: float) -> None:
    source = f"sync(active_basin, sync_weight={weight!r})\n"
    assert bool(lines(source)) == (not 0.05 <= weight <= 0.1)


TRICKY_FLAGGED = {
    "comment-and-parenthesised-negative": "f(sync_weight=  # strong\n  -(0.5))\n",
    "chained-assignment": "x = cfg.sync_weight = y = 0.9\n",
    "dashed-config-key": "C = {'sync-weight': 1e0}\n",
    "option-default-on-next-line": (
        "p.add_argument('--sync-weight', type=float,\n    default=0.3, help='x')\n"
    ),
    "weight-last-interpolation": "obs_basin = obs_basin + (active_basin - obs_basin) * 0.9\n",
    "hex-default": "sync_weight: 'float' = 0x1\n",
}


@pytest.mark.parametrize("source", TRICKY_FLAGGED.values(), ids=TRICKY_FLAGGED.keys())
def test_trigger_reads_literals_through_comments_and_parens(source: str) -> None:
    assert len(lines(source)) == 1
    assert gate_passes(SyncWeightOutOfRange, source, Config())


def test_trigger_patterns_compile_on_python_310() -> None:
    """Atomic groups `(?>...)` need Python 3.11; the package supports 3.10."""
    from qig_guard.rules import qig009_sync_weight_out_of_range as module

    patterns = [v for v in vars(module).values() if isinstance(v, re.Pattern)]
    assert patterns and not any("(?>" in p.pattern for p in patterns)


TOWARD_ANOTHER_MODEL = {
    "helper-with-inline-literal": (
        """
        def nucleate(self_basin, other_basin):
            return slerp(self_basin, other_basin, 0.5)  # 3
        """,
        [3],
    ),
    "parameter-default-under-any-name": (
        """
        def fuse(self, self_basin, other_basin, depth: float = 0.9):
            return geodesic_interpolate(self_basin, other_basin, depth)  # 3
        """,
        [3],
    ),
    "merge-another-objects-basin-with-a-default": (
        """
        def absorb(absorber, victim, blend_weight=0.5):
            absorber.basin = slerp(absorber.basin, victim.basin, blend_weight)  # 3
        """,
        [3],
    ),
    "module-constant-and-keyword-t": (
        """
        PEER_SLERP_W = 0.25

        class Node:
            def on_sync(self, remote_basin):
                self.basin = slerp_sqrt(self.basin, to_simplex(remote_basin), PEER_SLERP_W)  # 6
                self.basin = blend(self.basin, remote_basin, t=PEER_SLERP_W * 2)  # 7
        """,
        [6, 7],
    ),
    "complement-of-a-local-keep-weight": (
        """
        LOCAL_KEEP = 0.8

        def mix(self, peer):
            self.basin = LOCAL_KEEP * self.basin + (1 - LOCAL_KEEP) * peer.basin  # 5
            self.basin = 0.8 * self.basin + 0.2 * peer.basin  # 6
            self.basin = self.basin * (1 - 0.3) + peer.basin * 0.3  # 7
        """,
        [5, 6, 7],
    ),
    "hand-written-step-through-a-direction-name": (
        """
        def pull(obs_basin, active_basin, strength=0.4):
            direction = active_basin - obs_basin
            return obs_basin + strength * direction  # 4
        """,
        [4],
    ),
    "end-through-a-local-bound-once": (
        """
        def follow(self, peer):
            theirs = peer.basin.detach()
            self.basin = slerp(self.basin, theirs, 0.5)  # 4
        """,
        [4],
    ),
    "basin-returned-by-another-models-getter": (
        """
        def absorb(self, other):
            self.basin = slerp(self.basin, other.get_basin(), 0.5)  # 3
        """,
        [3],
    ),
    "target-kernel-absorbs-source-kernel": (
        """
        def cannibalise(source_kernel, target_kernel):
            source_basin = source_kernel.profile.basin
            target_basin = target_kernel.profile.basin
            merged = 0.7 * target_basin + 0.3 * source_basin  # 5
        """,
        [5],
    ),
    "child-pulled-toward-a-blend-of-parents": (
        """
        def breed(self, parent_a, parent_b, child):
            parent_blend = geodesic_interpolate(parent_a.basin, parent_b.basin, t=0.08)
            child.basin = geodesic_interpolate(child.basin, parent_blend, t=0.8)  # 4
        """,
        [4],
    ),
    "ocean-moved-toward-a-kernel": (
        """
        def nudge(self, ocean_kernel):
            ocean_kernel.basin = slerp(ocean_kernel.basin, self.basin, t=0.3)  # 3
        """,
        [3],
    ),
    "helper-named-for-an-interpolation": (
        """
        def absorb(self, peer):
            self.basin = apply_interpolation(self.basin, peer.basin, 0.5)  # 3
            self.basin = self.mixer.blend (self.basin, peer.basin, 0.6)  # 4
        """,
        [3, 4],
    ),
    "weighted-sum-over-lines-and-brackets": (
        """
        def absorb(self, peer, keep=0.5):
            self.basin = (
                self.basin
                + (keep
                   * (peer.basin - self.basin))  # 5
            )
        """,
        [5],
    ),
}


@pytest.mark.parametrize(
    ("source", "expected"), TOWARD_ANOTHER_MODEL.values(), ids=TOWARD_ANOTHER_MODEL.keys()
)
def test_interpolation_toward_another_models_basin(source: str, expected: list[int]) -> None:
    assert lines(textwrap.dedent(source)) == expected
    assert gate_passes(SyncWeightOutOfRange, textwrap.dedent(source), Config())


NOT_TOWARD_ANOTHER_MODEL = {
    "in-range-through-names": """
        SMALL = 0.08

        def entrain(self_basin, other_basin, strength=0.1):
            a = slerp(self_basin, other_basin, strength)
            b = slerp(self_basin, other_basin, SMALL)
            return 0.95 * self_basin + 0.05 * other_basin
        """,
    "own-target-history-and-inputs": """
        def step(self, target_basin, prev_basin, input_basin, response_basin):
            self.basin = slerp(self.basin, self.target_basin, 0.5)
            self.basin = slerp(self.basin, target_basin, 0.3)
            self.basin = slerp(self.basin, prev_basin, 2.0)
            self.basin = slerp(self.basin, input_basin, 0.3)
            self.basin = geodesic_interpolate(self.basin, response_basin, t=0.2)
            self.basin = slerp(self.basin, random_basin(64), 0.3)
        """,
    "not-basins": """
        lr = 0.5 * lr + 0.5 * new_lr
        loss_avg = 0.9 * loss_avg + 0.1 * loss
        weights = slerp(weights, other_weights, 0.5)
        mixed = 0.5 * hidden + 0.5 * other_hidden
        """,
    "dream-recombination-with-random-t": """
        import random

        def dream(memory_bank):
            a_basin, b_basin = random.sample(memory_bank, 2)
            t = random.random()
            return slerp(a_basin, b_basin, t)
        """,
    "moving-average-of-the-assigned-basin-toward-a-centroid": """
        def observe(self, state, alpha=0.3):
            self.ocean_basin = (1 - alpha) * self.ocean_basin + alpha * state.centroid
        """,
    "recombining-two-entries-of-one-table": """
        def breed(genomes, t=0.5):
            parent_basins = [g.basin for g in genomes]
            return slerp(parent_basins[0], parent_basins[1], t)
        """,
    "observation-is-an-input": """
        def perceive(self, observation):
            self.current_basin = slerp(self.current_basin, observation.basin_coords, 0.3)
        """,
    "weighted-sum-toward-a-target-name": """
        def navigate(self, attractor):
            current_basin = self.state.basin
            target_basin = attractor.coordinates
            new_basin = current_basin * 0.7 + target_basin * 0.3
        """,
    "generation-state-toward-items-basins": """
        def generate(self, concept, words):
            current = self.state.basin
            current = slerp(current, concept.basin, 0.3)
            for word in words:
                current = slerp(current, word.basin, 0.5)
            self.basin = slerp(self.basin, concept.basin, 0.4)
            nearest = slerp(current, neighbor_basin, 0.5)
        """,
    "own-target-through-a-local": """
        def settle(self):
            goal = self.target_basin
            self.basin = slerp(self.basin, goal, 0.5)
        """,
    "memory-consolidation": """
        def consolidate(old_basin, memory_basin):
            return geodesic_interpolation(old_basin, memory_basin, 0.5)
        """,
    "weight-that-is-reassigned-or-passed": """
        def fuse(self_basin, other_basin, depth=0.9):
            depth = min(depth, 0.1)
            return slerp(self_basin, other_basin, depth)

        def fuse_all(self_basin, other_basin, weight):
            return slerp(self_basin, other_basin, weight)
        """,
}


@pytest.mark.parametrize(
    "source", NOT_TOWARD_ANOTHER_MODEL.values(), ids=NOT_TOWARD_ANOTHER_MODEL.keys()
)
def test_interpolation_not_toward_another_models_basin(source: str) -> None:
    assert lines(textwrap.dedent(source)) == []


def test_weight_imported_from_a_project_module(tmp_path: Path) -> None:
    package = tmp_path / "kernel"
    (package / "config").mkdir(parents=True)
    (package / "config" / "constants.py").write_text(
        "from typing import Final\nSYNC_PULL: Final[float] = 0.2\nSMALL_PULL = 0.08\n"
    )
    source = textwrap.dedent(
        """
        from .config.constants import SYNC_PULL, SMALL_PULL
        from kernel.config.constants import SYNC_PULL as PULL

        def receive(self, remote_basin):
            self.basin = slerp(self.basin, remote_basin, SYNC_PULL)  # 6
            self.basin = slerp(self.basin, remote_basin, SMALL_PULL)
            self.basin = slerp(self.basin, remote_basin, PULL)  # 8
        """
    )
    path = package / "systems.py"
    path.write_text(source)
    result = check_source(str(path), source.encode(), Config(), [SyncWeightOutOfRange])
    assert [(f.line, "0.2" in f.message) for f in result.findings] == [(6, True), (8, True)]


def test_an_annotated_default_is_read() -> None:
    # Issue 16: the old text trigger rejected this file, so the rule never saw the line.
    source = """
        from typing import Annotated

        from pydantic import BaseModel, Field

        class Settings(BaseModel):
            sync_weight: Annotated[float, Field(ge=0.05)] = 0.5
    """
    assert [f.line for f in rule_findings(SyncWeightOutOfRange, source)] == [7]
