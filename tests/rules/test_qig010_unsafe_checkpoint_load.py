"""QIG010 unsafe-checkpoint-load: torch.load without weights_only=True, pickled checkpoints."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.engine.fixer import fix_source
from qig_guard.rules.qig010_unsafe_checkpoint_load import UnsafeCheckpointLoad


def findings(source: str) -> list[tuple[int, bool]]:
    """(line, has an unsafe fix) per finding."""
    return [
        (f.line, f.fix is not None and not f.fix.safe)
        for f in rule_findings(UnsafeCheckpointLoad, source)
    ]


def fixed(source: str, unsafe: bool = True) -> str:
    outcome = fix_source(
        "load.py", textwrap.dedent(source), Config(), [UnsafeCheckpointLoad], unsafe
    )
    assert outcome.refused is None
    return outcome.source


FLAGGED = {
    "spec-extraction-template": (
        """
        import torch

        def extract_basin_from_checkpoint(checkpoint_path, output_path):
            checkpoint = torch.load(checkpoint_path, map_location='cpu')
        """,
        [(5, True)],
    ),
    "module-alias": ("import torch as T\nstate = T.load('gary_a.pt')\n", [(2, True)]),
    "from-import-alias": (
        "from torch import load as L\n\nclass Coordinator:\n    def restore(self, p):\n"
        "        return L(p)\n",
        [(5, True)],
    ),
    "serialization-module": (
        "from torch.serialization import load\nsd = load(buf)\n",
        [(2, True)],
    ),
    "explicit-false-no-fix": (
        "import torch\nck = torch.load(path, map_location='cpu', weights_only=False)\n",
        [(2, False)],
    ),
    "custom-pickle-module-no-fix": (
        "import torch, dill\nck = torch.load(path, pickle_module=dill)\n",
        [(2, False)],
    ),
    "positional-pickle-module-no-fix": (
        "import torch, pickle\nck = torch.load(path, 'cpu', pickle)\n",
        [(2, False)],
    ),
    "pickle-with-open-checkpoint": (
        """
        import pickle

        with open(args.checkpoint, "rb") as handle:
            state = pickle.load(handle)
        """,
        [(5, False)],
    ),
    "pickle-loads-basin-bytes": (
        "import pickle as pk\nbasin = pk.loads(basin_bytes)\n",
        [(2, False)],
    ),
    "pickle-in-basin-loader-function": (
        """
        from pickle import load

        def load_target_basin(path):
            with open(path, "rb") as f:
                return load(f)
        """,
        [(6, False)],
    ),
    "pickle-of-pt-file": (
        "import pickle\nsd = pickle.load(open('runs/gary_b/model.pt', 'rb'))\n",
        [(2, False)],
    ),
    "dill": ("import dill\nck = dill.load(open(ckpt_path, 'rb'))\n", [(2, False)]),
}


@pytest.mark.parametrize(("source", "expected"), FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str, expected: list[tuple[int, bool]]) -> None:
    assert findings(source) == expected


NOT_FLAGGED = {
    "explicit-true": "import torch\nsd = torch.load(p, map_location='cpu', weights_only=True)\n",
    "kwargs-may-carry-it": "import torch\nsd = torch.load(p, **load_kwargs)\n",
    "non-literal-choice": "import torch\nsd = torch.load(p, weights_only=not args.trusted)\n",
    "shadowed-torch": "def restore(torch, p):\n    return torch.load(p)\n",
    "own-load-function": "def load(p):\n    return p\n\nstate = load('ckpt.pt')\n",
    "other-libraries": """
        import json, yaml, numpy as np
        basin = json.load(open('basin.json'))
        cfg = yaml.safe_load(open('config.yaml'))
        arr = np.load('basin.npy')
        """,
    "pickle-of-unrelated-data": """
        import pickle

        def load_vocab(path):
            with open(path, "rb") as f:
                return pickle.load(f)
        """,
    "with-handle-of-other-file": """
        import pickle

        def load_tokenizer(ckpt_dir):
            with open(ckpt_dir) as ckpt, open("vocab.pkl", "rb") as f:
                return pickle.load(f)
        """,
}


@pytest.mark.parametrize("source", NOT_FLAGGED.values(), ids=NOT_FLAGGED.keys())
def test_not_flagged(source: str) -> None:
    assert findings(source) == []


FIXES = {
    "single-line": (
        "import torch\nsd = torch.load(p)\n",
        "import torch\nsd = torch.load(p, weights_only=True)\n",
    ),
    "multiline-no-trailing-comma": (
        "import torch\nsd = torch.load(\n    p,\n    map_location='cpu'\n)\n",
        "import torch\nsd = torch.load(\n    p,\n    map_location='cpu', weights_only=True\n)\n",
    ),
    "multiline-trailing-comma": (
        "import torch\nsd = torch.load(\n    p,\n    map_location='cpu',\n)\n",
        "import torch\nsd = torch.load(\n    p,\n    map_location='cpu',\n"
        "    weights_only=True,\n)\n",
    ),
    "multiline-with-comments": (
        "import torch\nsd = torch.load(\n    p,  # path\n    map_location='cpu',  # cpu\n)\n",
        "import torch\nsd = torch.load(\n    p,  # path\n    map_location='cpu',  # cpu\n"
        "    weights_only=True,\n)\n",
    ),
    "single-argument-trailing-comma": (
        "import torch\nsd = torch.load(p,)\nck = torch.load(\n    p,\n)\n",
        "import torch\nsd = torch.load(p, weights_only=True,)\n"
        "ck = torch.load(\n    p,\n    weights_only=True,\n)\n",
    ),
    "nested-in-expression": (
        "import torch\nbasin = torch.load(p)['basin_matcher.target_basin']\n",
        "import torch\nbasin = torch.load(p, weights_only=True)['basin_matcher.target_basin']\n",
    ),
    "two-calls-one-line": (
        "import torch\na, b = torch.load(x), torch.load(y)\n",
        "import torch\na, b = torch.load(x, weights_only=True), torch.load(y, weights_only=True)\n",
    ),
}


@pytest.mark.parametrize(("source", "expected"), FIXES.values(), ids=FIXES.keys())
def test_unsafe_fix(source: str, expected: str) -> None:
    assert fixed(source) == expected
    assert fixed(expected) == expected
    assert fixed(source, unsafe=False) == source


def test_explicit_false_is_left_alone_by_fix() -> None:
    source = "import torch\nsd = torch.load(p, weights_only=False)\n"
    assert fixed(source) == source
    result = check_source("l.py", source.encode(), Config(), [UnsafeCheckpointLoad])
    assert "explicitly" in result.findings[0].message


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nx = torch.load(p)\n",
        "import torch.serialization\nx = torch.serialization.load(p)\n",
        "from torch import (\n    save,\n    load as tload,\n)\nx = tload(p)\n",
        "import torch as T\nx = T.load(p)\n",
        "import pickle as pk\nx = pk.loads(b)\n",
        "from _pickle import loads\n",
        "from torch import serialization as ser\nx = ser.load(p, map_location='cpu')\n",
        "import torch\nx = (torch.load)(\n    p,  # weights_only=True is missing\n)\n",
        "import torch\nx = torch.load(p, weights_only=(False))\n",
        "import torch\nx = torch.load(p, map_location=lambda s, weights_only=True: s)\n",
        "import torch\nx = torch.load(f(weights_only=True))\n",
        "import torch\nx = torch.load(p, weights_only=True)\ny = torch.load(q)\n",
    ],
)
def test_trigger_accepts_every_spelling(source: str) -> None:
    assert gate_passes(UnsafeCheckpointLoad, source, Config())


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.save(x, p)\n",
        "import json\njson.load(f)\n",
        "import torch\nmodel.load_state_dict(sd)\n",
        "import torch\nimport json as j\nj.load(f)\nx = torch.zeros(3)\n",
    ],
)
def test_trigger_skips_files_without_a_load(source: str) -> None:
    assert not rule_findings(UnsafeCheckpointLoad, source, Config())


def test_checking_with_these_rules_never_imports_torch() -> None:
    script = (
        "import sys\n"
        "from qig_guard.engine.checker import check_source\n"
        "from qig_guard.config import Config\n"
        "from qig_guard.rules import load_rules\n"
        "rules = load_rules(['QIG007', 'QIG008', 'QIG009', 'QIG010'])\n"
        "source = b'import torch\\ndef dream(model, opt):\\n    model.train()\\n"
        "    model(torch.randn(2))\\n    opt.step()\\n    torch.load(p)\\n"
        "    sync(b, sync_weight=0.5)\\n'\n"
        "codes = {f.code for f in check_source('x.py', source, Config(), rules).findings}\n"
        "assert codes == {'QIG007', 'QIG008', 'QIG009', 'QIG010'}, codes\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
