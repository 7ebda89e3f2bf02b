"""Generated research-style sources: the checker never crashes, every fix re-parses."""

from __future__ import annotations

import ast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qig_guard.config import Config
from qig_guard.engine.checker import check_source
from qig_guard.engine.fixer import fix_source
from qig_guard.rules import all_codes, load_rules

RULES = load_rules(all_codes())
NAMES = st.sampled_from(
    [
        "ocean", "active_basin", "obs_basin", "basin", "model", "teacher", "student",
        "target_basin", "optimizer", "ocean_optimizer", "loss", "ocean_loss", "p", "q",
        "loader", "fisher_diag", "sync_weight", "checkpoint", "torch", "F", "np", "pickle",
        "json", "self", "scaler", "basins", "path",
    ]
)  # fmt: skip
ATTRIBUTES = st.sampled_from(
    [
        "basin", "basin_matcher", "target_basin", "parameters", "state_dict", "load_state_dict",
        "step", "backward", "detach", "clone", "train", "eval", "requires_grad_", "data",
        "copy_", "norm", "save", "load", "dump", "optim", "Adam", "optimizer", "set_target_basin",
        "linalg", "cdist", "mse_loss", "no_grad", "zero_grad",
    ]
)  # fmt: skip


LITERALS = st.sampled_from(["0.1", "0.5", "True", "None", "'basin.pt'", "(64)"])
KEYWORDS = st.sampled_from(["weights_only", "sync_weight", "strict", "lr", "alpha"])
OPERATORS = st.sampled_from(["-", "+", "*", "**"])
HEADERS = st.sampled_from(
    [
        "with torch.no_grad():", "for p, q in zip(a, b):", "if ocean:",
        "def consolidate_toward_basin(model, target_basin, sync_weight=0.5):",
        "def sync(active, observers, ocean):", "def step(self):", "class OceanWatcher:",
    ]
)  # fmt: skip
IMPORTS = st.sampled_from(
    [
        "import torch", "import pickle", "from torch import save as s",
        "import torch.nn.functional as F", "import numpy as np", "import json",
    ]
)  # fmt: skip


@st.composite
def expressions(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(NAMES, LITERALS))
    inner = expressions(depth - 1)
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return f"{draw(inner)}.{draw(ATTRIBUTES)}"
    if shape == 1:
        args = draw(st.lists(inner, max_size=3))
        return f"{draw(inner)}({', '.join(args)})"
    if shape == 2:
        return f"{draw(inner)}({draw(KEYWORDS)}={draw(inner)})"
    if shape == 3:
        return f"({draw(inner)} {draw(OPERATORS)} {draw(inner)})"
    if shape == 4:
        keys = draw(st.lists(st.sampled_from(["basin", "dim", "source_model"]), max_size=3))
        return "{" + ", ".join(f"'{key}': {draw(inner)}" for key in keys) + "}"
    return f"[{draw(inner)} for p in x]"


@st.composite
def statements(draw: st.DrawFn, depth: int = 2) -> list[str]:
    shape = draw(st.integers(0, 4 if depth else 3))
    if shape == 0:
        target = draw(st.one_of(NAMES, st.builds("{}.{}".format, NAMES, ATTRIBUTES)))
        return [f"{target} = {draw(expressions())}"]
    if shape == 1:
        return [f"{draw(NAMES)} += {draw(expressions())}"]
    if shape == 2:
        return [draw(expressions())]
    if shape == 3:
        return [draw(IMPORTS)]
    header = draw(HEADERS)
    body = [line for _ in range(draw(st.integers(1, 4))) for line in draw(statements(depth - 1))]
    if header.startswith("class"):
        body = ["def update(self):"] + ["    " + line for line in body]
    return [header] + ["    " + line for line in body]


SOURCES = st.lists(statements(), min_size=1, max_size=8).map(
    lambda blocks: "\n".join(line for block in blocks for line in block) + "\n"
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SOURCES)
def test_checker_never_crashes_and_fixes_reparse(source: str) -> None:
    ast.parse(source)  # the strategy only builds valid Python
    result = check_source("generated.py", source.encode(), Config(), RULES)
    assert not result.internal_error, [f.message for f in result.findings if f.code == "QIG000"]
    for finding in result.findings:
        assert finding.line >= 1 and finding.column >= 1
    outcome = fix_source("generated.py", source, Config(), RULES, unsafe=True)
    assert outcome.refused is None
    ast.parse(outcome.source)
    again = fix_source("generated.py", outcome.source, Config(), RULES, unsafe=True)
    assert again.applied == 0
