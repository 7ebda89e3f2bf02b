"""QIG002 direct-basin-assignment: realistic flagged and quiet shapes, and the fix."""

from __future__ import annotations

import textwrap

import pytest
from rule_cases import rule_findings

from qig_guard.checker import check_source
from qig_guard.config import Config
from qig_guard.fixer import fix_source
from qig_guard.rules.base import Rule
from qig_guard.rules.qig002_direct_basin_assignment import DirectBasinAssignment

RULES: list[type[Rule]] = [DirectBasinAssignment]


def _lines(source: str, config: Config | None = None) -> list[int]:
    return [finding.line for finding in rule_findings(RULES, source, config)]


def _fixed(source: str, unsafe: bool = False) -> str:
    outcome = fix_source("coordinator.py", textwrap.dedent(source), Config(), RULES, unsafe)
    assert outcome.refused is None
    return outcome.source


FLAGGED = {
    "spec-example": """
        model.basin_matcher.target_basin = new_basin  # 2
    """,
    "augmented": """
        def nudge(model, direction, sync_weight=0.1):
            model.basin_matcher.target_basin += sync_weight * direction  # 3
    """,
    "annotated": """
        model.basin_matcher.target_basin: torch.Tensor = basin  # 2
    """,
    "data-assignment": """
        gary_b.basin_matcher.target_basin.data = gary_a_basin.clone()  # 2
    """,
    "in-place-copy-under-no-grad": """
        import torch

        with torch.no_grad():
            model.basin_matcher.target_basin.copy_(teacher_basin)  # 5
            model.basin_matcher.target_basin.data.mul_(0.5)  # 6
    """,
    "item-assignment": """
        matcher.target_basin[:] = new_basin  # 2
        matcher.target_basin[3] += 0.01  # 3
        matcher.target_basin.data[0:32] = half  # 4
    """,
    "tuple-unpacking": """
        gary.basin_matcher.target_basin, step = basin, 0  # 2
    """,
    "setattr-builtin-and-object": """
        setattr(model.basin_matcher, "target_basin", new_basin)  # 2
        object.__setattr__(matcher, 'target_basin', new_basin)  # 3
    """,
    "register-buffer-from-outside": """
        gary_b.basin_matcher.register_buffer("target_basin", gary_a_basin)  # 2
        gary_b.basin_matcher.register_parameter("target_basin", nn.Parameter(b))  # 3
    """,
    "nn-init-in-place": """
        import torch.nn as nn

        nn.init.normal_(model.basin_matcher.target_basin)  # 4
    """,
    "self-in-other-class-method": """
        class ConstellationCoordinator:
            def sync(self, basin):
                self.gary_b.basin_matcher.target_basin = basin  # 4

            def reset(self, basin):
                self.target_basin = basin  # 7
    """,
    "indexed-constellation": """
        for i, gary in enumerate(constellation):
            constellation[i].basin_matcher.target_basin = shared  # 3
    """,
    "parenthesised-multiline": """
        (  # 2
            model.basin_matcher.target_basin
        ) = new_basin
    """,
}

QUIET = {
    "reads": """
        current = model.basin_matcher.target_basin
        dist = fisher_distance(current, model.basin_matcher.target_basin.detach(), fisher)
        if model.basin_matcher.target_basin == None:
            pass
        basin = getattr(model.basin_matcher, "target_basin")
        model.basin_matcher.target_basin.requires_grad_(False)
    """,
    "setter": """
        model.basin_matcher.set_target_basin(new_basin)
        setattr(model.basin_matcher, attribute_name, value)
    """,
    "owner-named-like-basin-matcher": """
        import torch.nn as nn

        class BasinMatcher(nn.Module):
            def load(self, path):
                self.target_basin = torch.tensor(json.load(open(path))["basin"])
                with torch.no_grad():
                    self.target_basin.copy_(self.target_basin / self.target_basin.norm())
                    self.target_basin[0] = 0.0
                setattr(self, "target_basin", self.target_basin)
    """,
    "init-registers-own-buffer": """
        class QIGKernelRecursive(nn.Module):
            def __init__(self, target_basin):
                super().__init__()
                self.register_buffer("target_basin", target_basin)
                self.register_buffer("current_basin", torch.zeros(64))
    """,
    "owner-subclass-of-basin-matcher": """
        class FisherMatcher(matching.BasinMatcher):
            def refresh(self, basin):
                self.target_basin = basin
    """,
    "owner-defines-setter": """
        class Gary(nn.Module):
            def set_target_basin(self, basin):
                self._check(basin)
                self.target_basin = basin

            def step(self, lr):
                self.target_basin -= lr * self.target_basin.grad
    """,
    "any-class-initialises-own-attribute": """
        class QIGKernelRecursive(nn.Module):
            def __init__(self, d_model, target_basin=None):
                super().__init__()
                self.target_basin = target_basin
    """,
    "other-attributes-and-locals": """
        target_basin = load_basin(path)
        model.basin_matcher.current_basin = target_basin
        model.basin_matcher._target_basin = target_basin
        state["basin_matcher.target_basin"] = target_basin
        target_basin += 1
    """,
    "shadowed-setattr": """
        def setattr(obj, name, value):
            obj.log(name, value)

        setattr(model.basin_matcher, "target_basin", basin)
    """,
}


def _expected(source: str) -> list[int]:
    return [
        index
        for index, line in enumerate(textwrap.dedent(source).splitlines(), start=1)
        if line.rstrip().endswith(f"# {index}")
    ]


@pytest.mark.parametrize("source", FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str) -> None:
    expected = _expected(source)
    assert expected, "each flagged case marks its expected lines"
    assert _lines(source) == expected


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet(source: str) -> None:
    assert _lines(source) == []


def test_chained_targets_report_each_write() -> None:
    assert _lines("a.target_basin = b.target_basin = basin\n") == [1, 1]


def test_configured_attribute_setter_and_owner() -> None:
    config = Config(
        protected_attribute="identity", basin_setter="set_identity", basin_owners=("anchor",)
    )
    source = """
        model.anchor.identity = basin  # 2
        model.basin_matcher.target_basin = basin

        class IdentityAnchor:
            def move(self, basin):
                self.identity = basin
    """
    assert _lines(source, config) == _expected(source)
    (finding,) = check_source("c.py", b"m.anchor.identity = b\n", config, RULES).findings
    assert finding.fix is not None and finding.fix.safe
    assert finding.fix.edits[0].content == "m.anchor.set_identity(b)"


@pytest.mark.parametrize(
    ("source", "fixed"),
    [
        (
            "self.gary_b.basin_matcher.target_basin = basin\n",
            "self.gary_b.basin_matcher.set_target_basin(basin)\n",
        ),
        (
            "model.basin_matcher.target_basin = (\n    a_basin  # from Gary-A\n)\n",
            "model.basin_matcher.set_target_basin((\n    a_basin  # from Gary-A\n))\n",
        ),
        (
            "model.basin_matcher.target_basin = a, b\n",
            "model.basin_matcher.set_target_basin((a, b))\n",
        ),
        (
            "x = 1; model.basin_matcher.target_basin = basin; y = 2\n",
            "x = 1; model.basin_matcher.set_target_basin(basin); y = 2\n",
        ),
        (
            "setattr(self.basin_matcher, 'target_basin', basin)\n",
            "self.basin_matcher.set_target_basin(basin)\n",
        ),
    ],
)
def test_safe_fix_for_basin_owner(source: str, fixed: str) -> None:
    assert _fixed(source) == fixed


@pytest.mark.parametrize(
    "source",
    [
        "gary.target_basin = basin\n",
        "constellation[i].basin_matcher.target_basin = basin\n",
        "class Trainer:\n    def reset(self, basin):\n        self.target_basin = basin\n",
    ],
)
def test_fix_is_unsafe_when_setter_may_be_missing(source: str) -> None:
    assert _fixed(source) == source
    assert "set_target_basin(basin)" in _fixed(source, unsafe=True)


@pytest.mark.parametrize(
    "source",
    [
        "model.basin_matcher.target_basin += delta\n",
        "model.basin_matcher.target_basin.copy_(basin)\n",
        "model.basin_matcher.target_basin.data = basin\n",
        "model.basin_matcher.target_basin[0] = 1.0\n",
        "a.basin_matcher.target_basin = b.basin_matcher.target_basin = basin\n",
    ],
)
def test_no_fix_without_a_mechanical_rewrite(source: str) -> None:
    (finding, *_) = check_source("c.py", source.encode(), Config(), RULES).findings
    assert finding.fix is None


def test_trigger() -> None:
    config = Config()
    assert not DirectBasinAssignment.could_match("b = model.basin_matcher.target_basin\n", config)
    assert not DirectBasinAssignment.could_match("x.target_basin_path = p\n", config)
    for read in (
        "d = fisher_distance(m.basin_matcher.target_basin.detach(), b)\n",
        "def consolidate(model, target_basin: torch.Tensor, steps: int = 50): ...\n",
        "model = QIGKernelRecursive(d_model=768, target_basin=target_basin_path)\n",
    ):
        assert not DirectBasinAssignment.could_match(read, config)
    for source in FLAGGED.values():
        assert DirectBasinAssignment.could_match(textwrap.dedent(source), config)


@pytest.mark.parametrize(
    "source",
    [
        'torch.save({\n    "basin": model.basin_matcher.target_basin,\n    "step": step,\n}, p)\n',
        "d = fisher_distance(model.basin_matcher.target_basin, current)\n",
        "ok = model.basin_matcher.target_basin == other\n",
        'ckpt["target_basin"] = basin\n',
    ],
)
def test_trigger_skips_reads_of_the_basin(source: str) -> None:
    assert not DirectBasinAssignment.could_match(source, Config())


@pytest.mark.parametrize(
    "source",
    [
        "a, m.basin_matcher.target_basin = x, y\n",
        "(a,\n m.basin_matcher.target_basin) = x, y\n",
        "m.target_basin[0][i] = 1.0\n",
        "(m.target_basin).data.mul_(0.5)\n",
        "m.target_basin //= 2\n",
        'setattr(\n    m,  # the matcher\n    "target_basin",\n    b,\n)\n',
        "self.register_buffer(\n    'target_basin', b)\n",
    ],
)
def test_trigger_accepts_odd_writes(source: str) -> None:
    assert DirectBasinAssignment.could_match(source, Config())
