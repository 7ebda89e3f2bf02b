"""The project index: what it records, and how a run uses it across files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qig_guard.config import Config
from qig_guard.engine.runner import run
from qig_guard.facts.project import FactsCache, ProjectFacts, file_facts, relevance

KERNEL = b"""\
class BasinMatcher:
    def __init__(self, dim):
        self.target_basin = None

    def set_target_basin(self, basin):
        self.target_basin = basin

    @staticmethod
    def blank(self, basin):
        self.reference_basin = basin


class Kernel:
    def __init__(self):
        self.basin_matcher = BasinMatcher(64)
        self.reference_basin = None

    def set_reference(self, basin, *, scale=1.0):
        self.reference_basin = basin * scale

    def reset(self):
        self.reference_basin = self.default()
"""


def test_file_facts_record_setters_held_classes_and_methods() -> None:
    project = ProjectFacts.merge([file_facts(KERNEL)])
    assert project.setters_of("target_basin") == (("BasinMatcher", "set_target_basin"),)
    # `reset` assigns from no parameter and the static method has no `self`: not setters
    assert project.setters_of("reference_basin") == (("Kernel", "set_reference"),)
    assert project.classes_held_in("basin_matcher") == {"BasinMatcher"}
    assert project.defines("BasinMatcher", "set_target_basin")
    assert not project.defines("Kernel", "set_target_basin")


def test_an_attribute_that_also_holds_other_values_has_no_known_class() -> None:
    other = b"class Graph:\n    def __init__(self):\n        self.basin_matcher = make_matcher()\n"
    project = ProjectFacts.merge([file_facts(KERNEL), file_facts(other)])
    assert project.classes_held_in("basin_matcher") == frozenset()


def test_files_without_basin_writes_or_valid_syntax_contribute_nothing() -> None:
    assert file_facts(b"class A:\n    def set(self, x):\n        self.x = x\n") == ()
    assert file_facts(b"class A:\n    def f(self, b):\n        self.basin = (\n") == ()


def test_digest_changes_with_the_facts_only() -> None:
    one = ProjectFacts.merge([file_facts(KERNEL)])
    same = ProjectFacts.merge([file_facts(KERNEL + b"\n# a comment\n")])
    other = ProjectFacts.merge([file_facts(KERNEL.replace(b"def set_reference", b"def take"))])
    assert one.digest == same.digest != other.digest


def test_cached_summaries_round_trip(tmp_path: Path) -> None:
    plain = b"x = 1\n"
    first = FactsCache(tmp_path).summaries([KERNEL, plain])
    assert first == [file_facts(KERNEL), ()]
    (index,) = tmp_path.rglob("index.json")
    assert len(json.loads(index.read_text())) == 2  # the irrelevant file is known too
    assert FactsCache(tmp_path).summaries([KERNEL, plain]) == first
    # A warm run reads the index: an entry there is believed, not recomputed.
    entries = json.loads(index.read_text())
    index.write_text(json.dumps({digest: [] for digest in entries}))
    assert FactsCache(tmp_path).summaries([KERNEL]) == [()]
    # Files no longer checked leave the index.
    assert len(json.loads(index.read_text())) == 1


def test_a_setter_in_one_file_guards_writes_in_another(tmp_path: Path) -> None:
    (tmp_path / "kernel.py").write_bytes(KERNEL)
    (tmp_path / "merge.py").write_text("def merge(a, b):\n    a.reference_basin = b\n")
    config = Config(source=tmp_path / "pyproject.toml")
    findings = run([tmp_path], config, jobs=1, use_cache=False).findings
    assert [(f.path.rsplit("/", 1)[-1], f.code) for f in findings] == [("merge.py", "QIG002")]
    # checked alone, merge.py has no class guarding the attribute
    alone = run([tmp_path / "merge.py"], config, jobs=1, use_cache=False).findings
    assert alone == []


def test_cached_results_are_invalidated_when_the_facts_change(tmp_path: Path) -> None:
    (tmp_path / "kernel.py").write_bytes(KERNEL)
    (tmp_path / "merge.py").write_text("def merge(a, b):\n    a.reference_basin = b\n")
    config = Config(source=tmp_path / "pyproject.toml")
    assert len(run([tmp_path], config, jobs=1).findings) == 1
    # the setter goes away: merge.py's cached finding must not survive
    (tmp_path / "kernel.py").write_bytes(KERNEL.replace(b"basin * scale", b"None"))
    second = run([tmp_path], config, jobs=1)
    assert second.findings == []
    assert second.stats.cached_files == 0


def test_value_kinds_are_read_off_the_shape_not_the_name() -> None:
    import ast

    from qig_guard.facts.kinds import ast_kind, numpy_only

    def kind(code: str) -> str | None:
        return ast_kind(ast.parse(code, mode="eval").body)

    assert kind("np.zeros(64)") == kind("numpy.random.dirichlet(a)") == "array"
    assert kind("np.ones(64) / 64") == "array"
    assert kind("torch.zeros(64)") == kind("torch.nn.Parameter(b)") == "tensor"
    assert kind("torch.randn(64).detach().clone()") == "tensor"
    assert kind("basin.cpu().numpy()") == "array" and kind("basin.tolist()") == "list"
    assert kind("{str(k): v for k, v in items}") == "dict" and kind("'b.json'") == "str"
    assert kind("basin") is None and kind("load_basin(p)") is None
    assert numpy_only("import numpy as np\n") and not numpy_only("import numpy\nimport torch\n")
    assert not numpy_only("x = 1\n")


def test_never_tensor_needs_evidence_and_no_tensor() -> None:
    arrays = b"class A:\n    def __init__(self):\n        self.ocean_basin = np.zeros(64)\n"
    tensors = b"class B:\n    def f(self, p):\n        self.ocean_basin = torch.load(p)\n"
    assert ProjectFacts.merge([file_facts(arrays)]).never_tensor("ocean_basin")
    assert not ProjectFacts.merge([file_facts(arrays), file_facts(tensors)]).never_tensor(
        "ocean_basin"
    )
    assert not ProjectFacts.merge([file_facts(KERNEL)]).never_tensor("unknown_basin")


SIGNATURES = b"""\
import json
import torch


def extract_signature(model):
    return model.basin_matcher.target_basin.detach().clone()


def encode(text):
    basin = embed(text)
    return basin  # an item's coordinates, computed here: not a stored identity


class Kernel:
    def __init__(self, model, path):
        self.identity = extract_signature(model)
        self.anchor = load_basin(path)
        self.label = describe(model)
        self.encoder = BasinEncoder(64)

    def signature(self):
        return self.identity_basin
"""


def test_functions_returning_basins_and_attributes_assigned_from_them() -> None:
    project = ProjectFacts.merge([file_facts(SIGNATURES)])
    assert project.returns_basin("extract_signature") and project.returns_basin("signature")
    assert not project.returns_basin("describe") and not project.returns_basin("encode")
    assert project.holds_basin("identity") and project.holds_basin("anchor")
    assert not project.holds_basin("label") and not project.holds_basin("encoder")


def test_basins_known_from_the_project_are_checked_in_other_files(tmp_path: Path) -> None:
    (tmp_path / "signatures.py").write_bytes(SIGNATURES)
    (tmp_path / "export.py").write_text(
        "import json\n"
        "import numpy as np\n\n"
        "def export(kernel, model, path):\n"
        "    np.save(path, extract_signature(model))\n"
        "    json.dump({'identity': kernel.identity.tolist()}, open(path, 'w'))\n"
        "    json.dump({'label': kernel.label}, open(path, 'w'))\n"
    )
    config = Config(source=tmp_path / "pyproject.toml", select=("QIG005", "QIG011"))
    findings = run([tmp_path], config, jobs=1, use_cache=False).findings
    assert [(f.path.rsplit("/", 1)[-1], f.line, f.code) for f in findings] == [
        ("export.py", 5, "QIG005"),
        ("export.py", 6, "QIG011"),
        ("export.py", 6, "QIG011"),
    ]


def test_one_argument_element_wise_transformations_keep_their_argument() -> None:
    source = b"""\
import numpy as np


def fisher_normalize_np(arr, eps=1e-10):
    p = np.maximum(arr, eps)
    return p / p.sum()


def project_to_simplex(v):
    return np.sum(v)  # a reduction: no vector comes out


def normalize_pair(a, b):
    return a / b
"""
    project = ProjectFacts.merge([file_facts(source)])
    assert project.keeps_argument("fisher_normalize_np")
    assert not project.keeps_argument("project_to_simplex")
    assert not project.keeps_argument("normalize_pair")


def test_a_basin_through_a_project_normaliser_is_still_a_basin(tmp_path: Path) -> None:
    (tmp_path / "geometry.py").write_text(
        "import numpy as np\n\n\ndef fisher_normalize_np(arr):\n"
        "    p = np.abs(arr) + 1e-10\n    return p / p.sum()\n"
    )
    (tmp_path / "packet.py").write_text(
        "import zlib\n\nimport numpy as np\n\nfrom geometry import fisher_normalize_np\n\n\n"
        "class SleepPacket:\n"
        "    def to_bytes(self):\n"
        "        quantized = (fisher_normalize_np(self.basin) * 32767).astype(np.int16)\n"
        "        payload = self.header() + quantized.tobytes()\n"
        "        return zlib.compress(payload, level=9)\n"
    )
    config = Config(source=tmp_path / "pyproject.toml", select=("QIG005",))
    findings = run([tmp_path], config, jobs=1, use_cache=False).findings
    assert [(f.path.rsplit("/", 1)[-1], f.line) for f in findings] == [("packet.py", 11)]
    assert "`.tobytes()`" in findings[0].message


def test_summaries_computed_in_workers_equal_one_by_one() -> None:
    from functools import partial

    from qig_guard.engine.isolation import WorkerPool
    from qig_guard.engine.runner import _MANY_SOURCES, _in_workers

    sources = [KERNEL] + [f"x_{i} = {i}\n".encode() for i in range(_MANY_SOURCES)]
    serial = FactsCache(None).summaries(sources)
    with WorkerPool(2) as pool:
        parallel = FactsCache(None).summaries(sources, partial(_in_workers, pool=pool))
    assert parallel == serial and serial[0] == file_facts(KERNEL)


@pytest.mark.parametrize(
    ("text", "relevant"),
    [
        (b"class A:\n    def f(self, b):\n        self.ocean_basin = b\n", True),
        (b"class A:\n    def f(self, b):\n        self.anchor: Tensor = b\n", False),
        (b"class A:\n    def f(self):\n        self.m = BasinMatcher(64)\n", True),
        (b"class A:\n    def f(self):\n        self.loss = nn.MSELoss()\n", True),
        (b"class A:\n    def f(self):\n        return self.model.current_basin\n", True),
        (b"class A:\n    def f(self):\n        return state['basin']\n", True),
        (b"def normalize(v):\n    return v / v.norm()\n", True),  # at the very start
        (b"import torch\n\ndef to_simplex(v):\n    return v\n", True),
        (b"class A:\n    def f(self):\n        self.basin == b\n", False),  # a comparison
        (b"x = 1\n  # def normalize(v):\n", False),
    ],
)
def test_relevance_finds_every_shape_from_its_literal(text: bytes, relevant: bool) -> None:
    assert relevance(("anchor_basin",))(text) is relevant
