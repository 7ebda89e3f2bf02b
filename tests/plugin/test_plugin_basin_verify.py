"""``--qig-basins-verify``: basin files checked against the checkpoints they came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from qig_guard.basin.files import encode  # noqa: E402
from qig_guard.basin.verify import Outcome, verify_against_checkpoint  # noqa: E402
from qig_guard.runtime import QIGKernelRecursive, extract_basin_from_checkpoint  # noqa: E402

SMALL = {
    "d_model": 16,
    "vocab_size": 32,
    "n_heads": 2,
    "min_recursion_depth": 1,
    "max_recursion_depth": 1,
    "n_probes": 2,
    "probe_len": 4,
    "max_seq_len": 8,
    "dropout": 0.0,
}
FACTORY = """
import torch

from qig_guard.runtime import QIGKernelRecursive

SMALL = {small!r}


def make_model():
    return QIGKernelRecursive(**SMALL)
"""


def _model(seed: int, *, with_target: bool) -> QIGKernelRecursive:
    torch.manual_seed(seed)
    model = QIGKernelRecursive(**SMALL)
    if with_target:
        target = torch.linspace(-0.5, 0.5, 64) * (seed + 1)
        model.basin_matcher.set_target_basin(target)
    return model


def make_pair(folder: Path, name: str, *, seed: int = 0, with_target: bool = True) -> Path:
    """``folder/name.pt`` (a tiny model's state dict) and ``folder/name.json`` extracted
    from it by the runtime, its provenance naming the checkpoint relative to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    model = _model(seed, with_target=with_target)
    checkpoint = folder / f"{name}.pt"
    torch.save(model.state_dict(), checkpoint)
    basin = extract_basin_from_checkpoint(
        checkpoint,
        folder / f"{name}.json",
        model=None if with_target else _model(seed, with_target=False),
        source_model=name,
    )
    document = json.loads(basin.read_text())
    document["provenance"]["extracted_from"] = checkpoint.name
    basin.write_text(encode(document))
    return basin


def _tamper(basin: Path, delta: float = 0.05) -> None:
    document = json.loads(basin.read_text())
    document["basin"][0] += delta
    basin.write_text(encode(document))


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """``basins/``: a matching file, a tampered one and one whose checkpoint is gone."""
    basins = pytester.path / "basins"
    make_pair(basins, "gary-a", seed=0)
    _tamper(make_pair(basins, "gary-b", seed=1))
    make_pair(basins, "gary-c", seed=2)
    (basins / "gary-c.pt").unlink()
    return pytester


def test_match_tamper_and_missing_checkpoint(project: pytest.Pytester) -> None:
    result = project.runpytest("--qig-basins-verify", "-rfs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*_ basin file basins/gary-b.json _*",
            "basin differs from the one re-extracted from */basins/gary-b.pt: "
            "Fisher distance 0.05 > tolerance 1e-06 (unit metric: *",
            "qig-guard: 3 basin files validated and checked against checkpoints: 1 passed, "
            "1 failed, 1 skipped",
            "FAILED basins/gary-b.json::basin - basin differs from the one re-extracted*",
            "SKIPPED ?1? basins/gary-c.json:1: checkpoint gary-c.pt not found (looked for "
            "*/basins/gary-c.pt, */gary-c.pt)",
        ]
    )


def test_without_the_option_only_the_format_is_checked(project: pytest.Pytester) -> None:
    result = project.runpytest("--qig-basins")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["qig-guard: 3 basin files validated: 3 passed"])


def test_ini_options_turn_it_on_and_set_the_tolerance(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nqig_basins_verify = true\nqig_basin_verify_tolerance = 0.1\n")
    result = project.runpytest()
    result.assert_outcomes(passed=2, skipped=1)


def test_a_changed_checkpoint_fails_without_extracting(pytester: pytest.Pytester) -> None:
    basin = make_pair(pytester.path / "basins", "gary-a")
    with (basin.parent / "gary-a.pt").open("ab") as handle:
        handle.write(b"\0")  # one more byte: a different file, and no longer a valid zip
    result = pytester.runpytest("--qig-basins-verify")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "checkpoint changed since extraction: */gary-a.pt has SHA-256 *, "
            "provenance.checkpoint_sha256 is *"
        ]
    )


def test_a_checkpoint_without_a_stored_basin_needs_the_model_factory(
    pytester: pytest.Pytester,
) -> None:
    make_pair(pytester.path / "basins", "gary-a", with_target=False)
    failed = pytester.runpytest("--qig-basins-verify")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["cannot re-extract the basin: *qig_basin_model_factory*"])
    pytester.makeini("[pytest]\nqig_basin_model_factory = no_such_module:make_model\n")
    missing = pytester.runpytest("--qig-basins-verify")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["qig_basin_model_factory: No module named 'no_such_module'"])
    pytester.makepyfile(models=FACTORY.format(small=SMALL))
    pytester.makeini("[pytest]\npythonpath = .\nqig_basin_model_factory = models:make_model\n")
    result = pytester.runpytest("--qig-basins-verify")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("qig_basin_paths = nowhere", "qig_basin_paths: */nowhere: no such file or folder"),
        ("qig_basin_verify_tolerance = -1", "qig_basin_verify_tolerance: expected a finite*"),
        ("qig_basin_model_factory = models.make", "qig_basin_model_factory: expected module:*"),
    ],
)
def test_bad_ini_options_are_usage_errors(
    pytester: pytest.Pytester, ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*qig-guard: {message}"])


def test_no_basin_files_is_said_not_hidden(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model="def test_forward():\n    pass\n")
    result = pytester.runpytest("--qig-basins")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["qig-guard: no basin files collected (validated)"])
    plain = pytester.runpytest()
    plain.stdout.no_fnmatch_line("qig-guard:*")


def test_the_pair_fixture_gives_a_file_that_verifies(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pair="""
        from qig_guard.basin import load_basin
        from qig_guard.basin.verify import Outcome, verify_against_checkpoint
        from qig_guard.testing import assert_basin_matches_checkpoint


        def test_pair(basin_checkpoint_pair):
            basin, checkpoint = basin_checkpoint_pair
            provenance = load_basin(basin).metadata["provenance"]
            assert provenance["extracted_from"] == str(checkpoint)
            assert verify_against_checkpoint(basin).outcome is Outcome.MATCH
            assert_basin_matches_checkpoint(basin)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_fisher_distance_uses_the_files_metric(tmp_path: Path) -> None:
    basin = make_pair(tmp_path, "gary-a")
    document = json.loads(basin.read_text())
    document.update(fisher_diag=[4.0] * 64, fisher_estimator="empirical", fisher_samples=8)
    document["basin"][3] -= 0.5
    basin.write_text(json.dumps(document))
    verification = verify_against_checkpoint(basin)
    assert verification.outcome is Outcome.DIFFERS
    assert verification.distance == pytest.approx(1.0)  # sqrt(4 * 0.5**2)
    assert "(the file's fisher_diag)" in verification.message
    assert verify_against_checkpoint(basin, tolerance=1.0).outcome is Outcome.MATCH


def test_a_file_without_a_checkpoint_hash_is_skipped(tmp_path: Path) -> None:
    basin = make_pair(tmp_path, "gary-a")
    document = json.loads(basin.read_text())
    del document["provenance"]["checkpoint_sha256"]
    basin.write_text(json.dumps(document))
    verification = verify_against_checkpoint(basin)
    assert verification.outcome is Outcome.SKIPPED
    assert verification.message.startswith("no provenance.checkpoint_sha256 to check")


def test_checkpoints_are_looked_up_next_to_the_file_then_under_the_roots(tmp_path: Path) -> None:
    basin = make_pair(tmp_path / "basins", "gary-a")
    moved = tmp_path / "checkpoints" / "gary-a.pt"
    moved.parent.mkdir()
    (tmp_path / "basins" / "gary-a.pt").rename(moved)
    document = json.loads(basin.read_text())
    document["provenance"]["extracted_from"] = "checkpoints/gary-a.pt"
    basin.write_text(json.dumps(document))
    assert verify_against_checkpoint(basin).outcome is Outcome.SKIPPED
    found = verify_against_checkpoint(basin, roots=[tmp_path])
    assert found.outcome is Outcome.MATCH and found.checkpoint == moved


def test_the_plugin_states_the_verifiers_default_tolerance() -> None:
    from qig_guard import pytest_plugin
    from qig_guard.basin import verify

    assert pytest_plugin.DEFAULT_TOLERANCE == verify.DEFAULT_TOLERANCE


def test_the_assertion_helper_names_what_is_wrong(tmp_path: Path) -> None:
    from qig_guard.testing import assert_basin_matches_checkpoint

    basin = make_pair(tmp_path, "gary-a")
    assert_basin_matches_checkpoint(basin)
    _tamper(basin, 0.5)
    with pytest.raises(AssertionError, match=r"Fisher distance 0\.5 > tolerance 1e-06"):
        assert_basin_matches_checkpoint(basin)
    assert_basin_matches_checkpoint(basin, tolerance=0.51)
    (tmp_path / "gary-a.pt").unlink()
    with pytest.raises(AssertionError, match=r"checkpoint gary-a\.pt not found"):
        assert_basin_matches_checkpoint(basin)


def test_without_torch_verification_is_skipped_with_the_install_hint(
    pytester: pytest.Pytester,
) -> None:
    from qig_guard.basin import save_basin
    from qig_guard.basin.verify import file_sha256

    checkpoint = pytester.path / "gary-a.pt"
    checkpoint.write_bytes(b"weights")
    save_basin(
        pytester.path / "gary-a.basin.json",
        [0.1] * 64,
        source_model="Gary-A",
        extracted_from="gary-a.pt",
        checkpoint_sha256=file_sha256(checkpoint),
    )
    pytester.makeconftest('import sys\n\nsys.modules["torch"] = None\n')
    result = pytester.runpytest("--qig-basins-verify", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*re-extraction needs torch (pip install 'qig-guard?runtime?')*"])


def test_locating_and_hashing_do_not_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    basin = make_pair(tmp_path, "gary-a")
    with (tmp_path / "gary-a.pt").open("ab") as handle:
        handle.write(b"\0")
    probe = (
        "import sys\n"
        "from qig_guard.basin.verify import verify_against_checkpoint\n"
        f"print(verify_against_checkpoint({str(basin)!r}).outcome.name, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.split() == ["CHECKPOINT_CHANGED", "False"], done.stderr
