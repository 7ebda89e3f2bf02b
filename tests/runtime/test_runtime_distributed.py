"""The distributed constellation on gloo: three local processes match the single-process sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from qig_guard.runtime import Constellation, QIGKernelRecursive, estimate_fisher_diag  # noqa: E402

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo"
)
WORKER = Path(__file__).with_name("distributed_worker.py")
CONFIG = {
    "d_model": 32,
    "vocab_size": 40,
    "n_heads": 2,
    "min_recursion_depth": 1,
    "max_recursion_depth": 2,
    "n_probes": 4,
    "probe_len": 8,
    "max_seq_len": 32,
}


def _model(seed: int) -> QIGKernelRecursive:
    torch.manual_seed(seed)
    return QIGKernelRecursive(**CONFIG)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run three gloo ranks (loopback only, file-store rendezvous); their saved results."""
    root = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(WORKER)]
    args = [str(root / "store"), str(root), json.dumps(CONFIG)]
    processes = [
        subprocess.Popen(
            [*command, str(rank), "3", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(3)
    ]
    outputs = [process.communicate(timeout=180)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    return [torch.load(root / f"rank{rank}.pt", weights_only=True) for rank in range(3)]


def test_roles_are_active_observer_and_ocean(ranks):
    assert [r["role"] for r in ranks] == ["active", "observer", "ocean"]


def test_observer_targets_match_the_single_process_sync(ranks):
    active, observer, ocean = (_model(seed) for seed in range(3))
    ocean_basin, (expected,) = Constellation(active, [observer], ocean).sync()
    for result in ranks:
        torch.testing.assert_close(result["targets"][0], expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(result["ocean_basin"], ocean_basin, atol=1e-6, rtol=0)
    assert ranks[1]["has_target"]
    torch.testing.assert_close(ranks[1]["own_target"], expected, atol=1e-6, rtol=0)
    assert not ranks[0]["has_target"] and not ranks[2]["has_target"]


def test_the_ocean_rank_gets_no_gradient_and_no_update(ranks):
    ocean = ranks[2]
    assert ocean["weights_unchanged"] and not any(ocean["grads"])


def test_fisher_all_reduce_equals_the_estimate_on_pooled_data(ranks):
    pooled = torch.cat([r["ids"] for r in ranks])
    expected = estimate_fisher_diag(_model(99), pooled)
    for result in ranks:
        assert int(result["total"]) == pooled[:, 1:].numel()
        torch.testing.assert_close(result["reduced"], expected, rtol=1e-6, atol=1e-12)


def test_the_example_runs_on_three_ranks_and_contracts_the_observer(tmp_path):
    example = Path(__file__).parents[2] / "examples" / "distributed_constellation.py"
    store = tmp_path / "store"
    processes = [
        subprocess.Popen(
            [sys.executable, str(example), "--store", str(store)],
            env={
                **os.environ,
                "RANK": str(rank),
                "WORLD_SIZE": "3",
                "GLOO_SOCKET_IFNAME": "lo",
                "CUDA_VISIBLE_DEVICES": "",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(3)
    ]
    outputs = [process.communicate(timeout=180)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    rows = {line.split()[1]: line.split() for line in outputs[0].splitlines() if "  0." in line}
    assert float(rows["observer"][4]) == pytest.approx(0.9, abs=0.02)  # moved 10% of the way
    assert rows["ocean"][2] == rows["ocean"][3]  # the Ocean only measures
