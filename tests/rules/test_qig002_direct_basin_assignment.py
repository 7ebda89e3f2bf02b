"""QIG002 direct-basin-assignment: realistic flagged and quiet shapes, and the fix."""

from __future__ import annotations

import textwrap

import pytest
from rule_cases import MATCHER_MODULE, check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.engine.fixer import fix_source
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
    project = (
        "class IdentityAnchor:\n"
        "    def set_identity(self, basin):\n"
        "        self.identity = basin\n"
        "class Model:\n"
        "    def __init__(self):\n"
        "        self.anchor = IdentityAnchor()\n"
    )
    data = f"{project}m.anchor.identity = b\n".encode()
    (finding,) = check_source("c.py", data, config, RULES).findings
    assert finding.fix is not None and finding.fix.safe
    assert finding.fix.edits[0].content == "m.anchor.set_identity(b)"


OWNER = MATCHER_MODULE + "\n\n"  # the index then knows what `x.basin_matcher` is


@pytest.mark.parametrize(
    ("source", "fixed"),
    [
        (
            "self.gary_b.basin_matcher.target_basin = basin\n",
            "self.gary_b.basin_matcher.set_target_basin(basin)\n",
        ),
        (
            "model.basin_matcher.target_basin = (\n    a_basin  # from Gary-A\n)\n",
            "model.basin_matcher.set_target_basin(\n    a_basin  # from Gary-A\n)\n",
        ),
        (
            "model.basin_matcher.target_basin = (\n    a.detach()\n    .clone()\n)\n",
            "model.basin_matcher.set_target_basin(\n    a.detach()\n    .clone()\n)\n",
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
    assert _fixed(OWNER + source) == OWNER + fixed


@pytest.mark.parametrize(
    "source",
    [
        "gary.target_basin = basin\n",
        "constellation[i].basin_matcher.target_basin = basin\n",
        # the index does not show what `basin_matcher` holds here
        "model.basin_matcher.target_basin = basin\n",
        # it holds a class that has no such setter
        "class Matcher:\n    pass\n"
        "class Model:\n    def __init__(self):\n        self.basin_matcher = Matcher()\n"
        "model.basin_matcher.target_basin = basin\n",
    ],
)
def test_fix_is_unsafe_when_setter_may_be_missing(source: str) -> None:
    assert _fixed(source) == source
    assert "set_target_basin(basin)" in _fixed(source, unsafe=True)


def test_no_fix_for_none() -> None:
    source = OWNER + "model.basin_matcher.target_basin = None  # free drift\n"
    (finding,) = check_source("c.py", source.encode(), Config(), RULES).findings
    assert finding.fix is None
    assert "set_target_basin" in finding.message


OTHER_NAMES_PROJECT = """\
class Kernel:
    def __init__(self):
        self.reference_basin = None
        self.identity_attractor = None

    def set_reference(self, basin):
        self.reference_basin = project_to_simplex(basin)

    def anchor(self, point, strength=1.0):
        self.identity_attractor = point * strength


class Pantheon:
    def __init__(self):
        self.kernel = Kernel()
"""


def test_other_basin_attributes_guarded_by_a_project_setter() -> None:
    source = OTHER_NAMES_PROJECT + textwrap.dedent(
        """
        def merge(pantheon, donor, child):
            child.reference_basin = donor.reference_basin.copy()  # 18
            pantheon.kernel.identity_attractor = donor.identity_attractor  # 19
            pantheon.kernel.identity_attractor[:] = 0.0  # 20
            pantheon.kernel.reference_basin = None  # 21
            # `anchor` is no conventional setter and `child`'s class is unknown: quiet
            child.identity_attractor = donor.identity_attractor
        """
    )
    findings = rule_findings(RULES, source)
    assert [f.line for f in findings] == [18, 19, 20, 21]
    first, second, third, fourth = findings
    assert "child.set_reference(...)" in first.message
    assert first.fix is not None and not first.fix.safe  # `child` could be anything
    assert second.fix is not None and second.fix.safe  # `pantheon.kernel` is a Kernel
    assert second.fix.edits[0].content == "pantheon.kernel.anchor(donor.identity_attractor)"
    assert third.fix is None and fourth.fix is None


def test_every_shape_of_write_to_a_guarded_basin_attribute() -> None:
    source = OTHER_NAMES_PROJECT + textwrap.dedent(
        """
        import torch
        from torch.nn.init import normal_


        def reset(pantheon, new):
            pantheon.kernel.reference_basin.data = new  # 22
            torch.nn.init.zeros_(pantheon.kernel.reference_basin)  # 23
            normal_(  # 24
                pantheon.kernel.identity_attractor
            )
            pantheon.kernel.reference_basin, other = new, None  # 27
        """
    )
    assert [f.line for f in rule_findings(RULES, source)] == [22, 23, 24, 27]


def test_configured_basin_names_guard_attributes_of_any_name() -> None:
    config = Config(basin_names=("*signature*",))
    source = textwrap.dedent(
        """\
        class Identity:
            def set_signature(self, value):
                self.signature = value


        class Model:
            def __init__(self):
                self.identity = Identity()


        def overwrite(model, value):
            model.identity.signature = value  # 12
            model.identity.signature.data = value  # 13
        """
    )
    # The index reads files that write such an attribute, and the gate knows it too.
    assert [f.line for f in rule_findings(RULES, source, config)] == [12, 13]


def test_a_generic_update_method_guards_only_known_receivers() -> None:
    source = """
        class Kernel:
            def __init__(self):
                self.basin = None

            def update(self, basin):
                self.basin = basin

        class Result:
            def __init__(self):
                self.basin = None

        def finish(result, mean_basin):
            result.basin = mean_basin  # many classes write `.basin`: which one is this?
    """
    assert _lines(source) == []


def test_basin_attributes_without_a_setter_stay_quiet() -> None:
    source = """
        from dataclasses import dataclass

        @dataclass
        class MemoryRecord:
            content: str
            basin_coords: list

        def remember(record, coords, cfg):
            record.basin_coords = coords
            record.basin = coords
            cfg.basin_path = "identity.json"

        class Tracker:
            def set_basin_path(self, path):
                self.basin_path = path

        tracker.basin_path = "b.json"
    """
    assert _lines(source) == []


def test_own_attribute_in_any_method_of_the_class() -> None:
    source = """
        class Faculty:
            def set_basin(self, basin):
                self.basin = simplex(basin)

            def adopt(self, basin):
                self.target_basin = basin / basin.sum()

        class ChainOfThought:
            def set_context(self, problem, target_basin=None):
                if target_basin is not None:
                    self.target_basin = as_array(target_basin)

            def step(self, basin):
                self.target_basin = None
    """
    assert _lines(source) == []


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
    assert not rule_findings(
        DirectBasinAssignment, "b = model.basin_matcher.target_basin\n", config
    )
    assert not rule_findings(DirectBasinAssignment, "x.path = target_basin_path\n", config)
    for read in (
        "d = fisher_distance(m.basin_matcher.target_basin.detach(), b)\n",
        "def consolidate(model, target_basin: torch.Tensor, steps: int = 50): ...\n",
        "model = QIGKernelRecursive(d_model=768, target_basin=target_basin_path)\n",
    ):
        assert not rule_findings(DirectBasinAssignment, read, config)
    for source in FLAGGED.values():
        assert gate_passes(DirectBasinAssignment, textwrap.dedent(source), config)


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
    assert not rule_findings(DirectBasinAssignment, source, Config())


@pytest.mark.parametrize(
    "source",
    [
        "ok = model.basin_matcher.target_basin == other\n",
        'ckpt["target_basin"] = basin\n',
        "current = model.basin_matcher.target_basin.detach().clone()\n",
        "log(model.target_basin)\nnew_target_basin = basin\n",
        'value = getattr(model.basin_matcher, "target_basin")\n',
    ],
)
def test_reads_that_cannot_be_writes_are_not_even_parsed(source: str) -> None:
    assert not gate_passes(DirectBasinAssignment, source, Config())


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
    assert gate_passes(DirectBasinAssignment, source, Config())


def test_self_outside_a_class_is_the_instance_too() -> None:
    source = """
        class Kernel:
            def set_basin(self, basin):
                self.basin = basin

        def mix(self, peer):  # attached to Kernel elsewhere
            self.basin = 0.8 * self.basin + 0.2 * peer.basin
    """
    assert _lines(source) == []
