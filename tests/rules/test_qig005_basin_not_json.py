"""QIG005 basin-not-json on realistic research code."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.engine.checker import check_text
from qig_guard.engine.fixer import fix_source
from qig_guard.rules.base import Rule
from qig_guard.rules.qig005_basin_not_json import BasinNotJson


def flagged_lines(source: str, config: Config | None = None) -> list[int]:
    return [f.line for f in rule_findings(BasinNotJson, source, config)]


FLAGGED = {
    "torch_save_attribute_chain": """
        import torch

        def export(model, path):
            torch.save(model.basin_matcher.target_basin, path)
    """,
    "aliased_save": """
        from torch import save as s

        def export(ocean, path):
            s(ocean.basin.detach().cpu(), path)
    """,
    "flow_through_local": """
        import torch

        class Exporter:
            def run(self, model, out_dir):
                vec = model.basin_matcher.current_basin.detach()
                vec = vec.cpu()
                torch.save(vec, f"{out_dir}/identity.pt")
    """,
    "pickle_keyword": """
        import pickle

        with open("basin.pkl", "wb") as handle:
            pickle.dump(obj=active_basin, file=handle)
    """,
    "pickle_dumps": """
        import pickle as pkl

        blob = pkl.dumps(target_basin.numpy())
    """,
    "joblib": """
        import joblib

        def checkpoint_identity(gary):
            joblib.dump(gary.basin_matcher.target_basin.numpy(), "gary.joblib")
    """,
    "np_save_keyword": """
        import numpy as np

        np.save(file="b.npy", arr=basin.cpu().numpy())
    """,
    "np_savez_positional": """
        import numpy as np

        np.savez("basins.npz", ocean_basin, active_basin)
    """,
    "np_savez_keyword_name": """
        from numpy import savez_compressed

        def dump(current, out):
            savez_compressed(out, basin=current, steps=100)
    """,
    "table_element_in_loop": """
        import torch

        for i, b in enumerate(observer_basins):
            torch.save(b, f"observer_{i}.pt")
    """,
    "checkpoint_key": """
        import torch

        def extract(checkpoint_path, out):
            state = torch.load(checkpoint_path)["model_state_dict"]
            torch.save(state["basin_matcher.target_basin"], out)
    """,
    "basin_only_record_literal": """
        import torch
        from datetime import datetime

        def save_identity(basin, path):
            torch.save({"basin": basin, "dim": 64, "timestamp": datetime.now().isoformat()}, path)
    """,
    "basin_only_record_via_name": """
        import torch

        def extract_basin_from_checkpoint(checkpoint_path, output_path):
            basin = compute_basin(checkpoint_path)
            basin_data = {"basin": basin, "extracted_from": checkpoint_path}
            torch.save(basin_data, output_path)
    """,
    "dict_call_record": """
        import pickle

        pickle.dump(dict(basin=target_basin, source_model="Gary-A"), open("b.pkl", "wb"))
    """,
    "struct_pack": """
        import struct

        def encode(model):
            current = model.basin_matcher.current_basin
            return struct.pack("<64f", *current.tolist())
    """,
    "zlib_bytes": """
        import zlib

        packed = zlib.compress(ocean_basin.cpu().numpy().tobytes())
    """,
    "tofile": """
        target_basin.numpy().tofile("basin.bin")
    """,
    "write_raw_bytes": """
        def store(basin, path):
            with open(path, "wb") as f:
                f.write(basin.numpy().tobytes())
    """,
    "getter_function": """
        import torch

        torch.save(extract_basin(teacher_model), "teacher_basin.pt")
    """,
    "loader_function": """
        import pickle

        pickle.dump(load_basin("teacher.json"), open("teacher.pkl", "wb"))
    """,
}


@pytest.mark.parametrize("source", FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str) -> None:
    assert len(flagged_lines(source)) == 1


NOT_FLAGGED = {
    "full_checkpoint": """
        import torch

        def save_checkpoint(model, optimizer, step, path):
            torch.save(
                {
                    "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict(),
                    "step": step,
                    "basin": model.basin_matcher.target_basin,
                },
                path,
            )

        def export(basin, path):  # the basin is also written as JSON
            save_basin(path, basin, source_model="m")
    """,
    "checkpoint_built_then_filled": """
        import torch

        def save(model, basin, path):
            ckpt = {"basin": basin}
            ckpt["model"] = model.state_dict()
            torch.save(ckpt, path)

        def export(basin, path):  # the basin is also written as JSON
            save_basin(path, basin, source_model="m")
    """,
    "checkpoint_with_module": """
        import torch

        torch.save({"model": model, "basin": basin}, "full.pt")

        def export(basin, path):  # the basin is also written as JSON
            save_basin(path, basin, source_model="m")
    """,
    "spread_checkpoint": """
        import torch

        torch.save({**state, "basin": basin}, "full.pt")

        def export(basin, path):  # the basin is also written as JSON
            save_basin(path, basin, source_model="m")
    """,
    "json_writer": """
        import json

        with open("basin.json", "w") as f:
            json.dump({"basin": basin.tolist(), "source_model": "Gary-A"}, f)
    """,
    "table_of_basins": """
        import torch

        torch.save(observer_basins, "observers.pt")
        torch.save(basin_bank, "bank.pt")
    """,
    "stacked_table": """
        import torch

        history = torch.stack([ocean_basin, active_basin])
        torch.save(history, "history.pt")
    """,
    "basin_vocab_and_ids": """
        import numpy as np

        np.save("vocab.npy", basin_vocab)
        np.save("ids.npy", basin_ids)
        np.save("dist.npy", basin_distances)
    """,
    "weights_only": """
        import torch

        torch.save(model.state_dict(), "weights.pt")
    """,
    "shadowed_torch": """
        class FakeTorch:
            def save(self, obj, path):
                pass

        torch = FakeTorch()
        torch.save(basin, "basin.pt")
    """,
    "local_save_function": """
        def save(obj, path):
            ...

        save(basin, "basin.json")
    """,
    "basin_matcher_module": """
        import torch

        torch.save(model.basin_matcher, "matcher.pt")
    """,
    "elementwise_pack": """
        import struct

        header = struct.pack("<i", basin_dim)
    """,
    "loop_over_non_basins": """
        import torch

        for i, layer in enumerate(model.layers):
            torch.save(layer, f"layer_{i}.pt")
    """,
    "compress_json": """
        import json
        import zlib

        blob = zlib.compress(json.dumps({"basin": basin.tolist()}).encode())
    """,
    "collections_and_modules": """
        import torch

        torch.save(basin_list, "basins.pt")
        torch.save(self.basin_buffer, "replay.pt")
        torch.save(BasinHead(64), "head.pt")
        torch.save(basin_stats, "stats.pt")
    """,
    "reassigned_to_non_basin": """
        import torch

        def run(model):
            x = model.basin_matcher.target_basin
            x = model.state_dict()
            torch.save(x, "weights.pt")
    """,
}


@pytest.mark.parametrize("source", NOT_FLAGGED.values(), ids=NOT_FLAGGED.keys())
def test_not_flagged(source: str) -> None:
    assert flagged_lines(source) == []


def test_points_at_the_writing_call() -> None:
    source = """
        import torch
        basin = torch.randn(64)
        torch.save(basin, "b.pt")
    """
    assert flagged_lines(source) == [4]


def test_configured_basin_names_and_tables() -> None:
    config = replace(Config(), basin_names=("identity",), basin_tables=("identity_bank",))
    source = """
        import torch
        torch.save(identity_vector, "a.pt")
        torch.save(identity_bank, "b.pt")
        torch.save(target_basin, "c.pt")
    """
    assert flagged_lines(source, config) == [3]


def test_trigger_skips_files_without_a_binary_writer() -> None:
    source = "import json\njson.load(open('basin.json'))\n"
    assert not rule_findings(BasinNotJson, source, Config())
    assert gate_passes(BasinNotJson, "from torch import save as s\ns(basin, p)\n", Config())


TRIGGER_FLAGGED = {
    "chained_assignment": "import torch\nv = w = target_basin\ntorch.save(w, p)\n",
    "numpy_alias_function": (
        "from numpy import save as sv\n\ndef f(model):\n"
        "    vec = model.basin_matcher.target_basin.numpy()\n    sv(path, vec)\n"
    ),
    "numpy_module_alias": "import numpy as numerical\nnumerical.save(path, arr=ocean_basin)\n",
    "multi_line_call": (
        "import torch\ntorch.save(\n    # the identity\n    model.basin_matcher.current_basin,\n"
        "    path,\n)\n"
    ),
    "loop_over_table": "import pickle\nfor b in observer_basins:\n    pickle.dump(b, f)\n",
    "savez_keyword": "import numpy as np\nnp.savez(out, basin=vec, step=1)\n",
    "basin_distance_parameter": (
        "import torch\n\ndef basin_distance(a, b):\n    torch.save(a, 'x.pt')\n    return 0\n"
    ),
    "record_name": (
        "import torch\nrecord = {'basin': basin, 'source_model': 'Gary-A'}\n"
        "torch.save(record, path)\n"
    ),
}


@pytest.mark.parametrize("source", TRIGGER_FLAGGED.values(), ids=TRIGGER_FLAGGED.keys())
def test_trigger_passes_every_flagged_shape(source: str) -> None:
    for case in (source, *FLAGGED.values()):
        assert gate_passes(BasinNotJson, textwrap.dedent(case), Config())
    assert len(flagged_lines(source)) == 1


TRIGGER_REJECTED = {
    "full_checkpoint": (
        "import torch\ntorch.save(\n    {\n        'model_state_dict': model.state_dict(),\n"
        "        'basin': model.basin_matcher.target_basin,\n        'step': step,\n    },\n"
        "    path,\n)\nsave_basin('b.json', model.basin_matcher.target_basin)\n"
    ),
    "json_log": "import json\njson.dump({'basin_drift': drift}, handle)\n",
    "weights_only": "import torch\n# basin kept in the json\ntorch.save(model.state_dict(), p)\n",
    "unbound_payload_name": "import torch\n# basin\ndef f(state, p):\n    torch.save(state, p)\n",
}


@pytest.mark.parametrize("source", TRIGGER_REJECTED.values(), ids=TRIGGER_REJECTED.keys())
def test_trigger_rejects_clean_look_alikes(source: str) -> None:
    """Speed: files of training code that mention basins and writers are not parsed."""
    assert not rule_findings(BasinNotJson, source, Config())
    assert not check_text("train.py", source, Config(), [BasinNotJson]).findings


def test_unsafe_fix_only_when_save_basin_is_imported() -> None:
    source = textwrap.dedent(
        """
        import numpy as np
        from qig_guard.basin import save_basin

        np.save("basin.npy", target_basin)
        """
    )
    assert fix_source("t.py", source, Config(), [BasinNotJson], unsafe=False).applied == 0
    fixed = fix_source("t.py", source, Config(), [BasinNotJson], unsafe=True)
    assert 'save_basin("basin.npy", target_basin)' in fixed.source
    without_import = "import torch\ntorch.save(basin, 'b.pt')\n"
    outcome = fix_source("t.py", without_import, Config(), [BasinNotJson], unsafe=True)
    assert outcome.applied == 0


ODD_SHAPES = """
import json, pickle, struct, zlib
import numpy as np
import torch
import torch.nn.functional as F
from torch import save as s

torch.save()
s(*args)
pickle.dump(**kwargs)
np.savez()
np.savez(*basins_to_save)
struct.pack("f")
json.dump(*payload)
json.dump({"basin": target_basin, **{}}, **opts)
f.write()
(lambda basin: torch.save(basin, "x.pt"))
a_basin = b_basin = c = target_basin
x, *rest = observer_basins
for (i, (k, v)) in enumerate(basin_bank.items()):
    pass
match target_basin:
    case [first, *_]:
        torch.norm(first - target_basin)
    case _:
        pass
try:
    pass
except* ValueError as err:
    pass
if (n := torch.norm(target_basin - ocean_basin)) > 1:
    pass
x = x.cpu() if x is not None else x
y = z
z = y
torch.save(y, "y.pt")
F.mse_loss(*pair)
basin_distance = lambda a, b: torch.norm(a - b)
[[torch.norm(b - c) for b in row] for row in basin_table]
{k: torch.norm(v - ocean_basin) for k, v in basin_bank.items()}
"""


def test_basin_rules_survive_odd_shapes() -> None:
    from qig_guard.rules.qig006_euclidean_basin_distance import EuclideanBasinDistance
    from qig_guard.rules.qig011_basin_missing_provenance import BasinMissingProvenance

    rules: list[type[Rule]] = [BasinNotJson, EuclideanBasinDistance, BasinMissingProvenance]
    result = check_source("odd.py", ODD_SHAPES.encode(), Config(), rules)
    assert not result.internal_error, [f.message for f in result.findings]
    found = [(f.code, f.line) for f in result.findings]
    assert found == [
        ("QIG005", 17),  # the lambda's parameter is named basin
        ("QIG006", 24),
        ("QIG006", 31),
        ("QIG006", 39),  # c is target_basin
        ("QIG006", 40),
    ]


CHECKPOINT_ONLY = """
    import torch


    def save_checkpoint(coordinator, path):
        state = {
            "step": coordinator.step,
            "members": [
                {
                    "name": m.name,
                    "state_dict": m.model.state_dict(),
                    "basin": m.basin,
                    "target_basin": m.model.basin_matcher.target_basin,
                }
                for m in coordinator.members
            ],
            "ocean": {"state_dict": coordinator.ocean.state_dict(), "basin": None},
        }
        torch.save(state, path)  # 19
"""


def test_a_basin_kept_only_inside_a_checkpoint_is_flagged() -> None:
    findings = rule_findings(BasinNotJson, CHECKPOINT_ONLY)
    assert [f.line for f in findings] == [19]
    assert "only inside a `torch.save` checkpoint" in findings[0].message


@pytest.mark.parametrize(
    "source",
    [
        # the module also writes the basin as JSON
        textwrap.dedent(CHECKPOINT_ONLY)
        + "\n\ndef export(m, path):\n    save_basin(path, m.basin, source_model=m.name)\n",
        # a checkpoint that holds no basin (None and strings are no vectors)
        """
        import torch

        def save(model, opt, path, step):
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "basin": None, "basin_path": "b.json", "step": step}, path)
        """,
    ],
)
def test_checkpoints_with_a_json_export_or_without_a_basin_are_quiet(source: str) -> None:
    assert rule_findings(BasinNotJson, source) == []


def test_an_inline_checkpoint_is_reported_at_its_basin() -> None:
    source = """
        import torch

        def save(kernel, path):
            torch.save({
                "kernel_state": kernel.model.state_dict(),
                "step": kernel.step,
                "basin_ref": kernel.basin_ref.detach().cpu(),  # 8
            }, path)
    """
    assert [f.line for f in rule_findings(BasinNotJson, source)] == [8]


def test_raw_bytes_of_a_basin_are_flagged_once_and_hashes_are_quiet() -> None:
    source = """
        import hashlib
        import zlib

        import numpy as np

        class SleepPacket:
            def to_bytes(self):
                quantized = (self.basin * 32767).astype(np.int16)
                payload = self.header() + quantized.tobytes()  # 10
                return zlib.compress(payload)

            def identity_hash(self):
                raw = self.basin.tobytes()
                return hashlib.sha256(raw).hexdigest()[:16]

            def fingerprint(self):
                digest = hashlib.sha256(self.basin.tobytes()).hexdigest()
                h = hashlib.blake2b()
                h.update(self.target_basin.tobytes())
                return digest, h.hexdigest(), hash(self.basin.tobytes())

            def dump(self, f):
                f.write(self.basin.tobytes())  # 24

            def send(self, sock):
                raw = self.basin.tobytes()  # 27
                sock.sendall(raw)
    """
    findings = rule_findings(BasinNotJson, source)
    assert [f.line for f in findings] == [10, 24, 27]
    assert "`.tobytes()`" in findings[0].message


# -- pickle modules are one fact shared with QIG010 (issue 16) ------------------------


def test_the_c_pickle_module_is_a_pickle_writer() -> None:
    source = """
        import _pickle

        def export(active_basin, path):
            with open(path, "wb") as f:
                _pickle.dump(active_basin, f)
    """
    assert flagged_lines(source) == [6]
    assert gate_passes(BasinNotJson, textwrap.dedent(source), Config())


def test_the_c_pickle_module_writing_no_basin_is_quiet() -> None:
    assert not flagged_lines("""
        import _pickle

        def export(config, path):
            with open(path, "wb") as f:
                _pickle.dump(config, f)
    """)
