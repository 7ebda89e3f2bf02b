"""Checkpoint basin extraction: safe by content, capped, with provenance."""

from __future__ import annotations

import hashlib
import json
import pickle
import struct

import pytest

torch = pytest.importorskip("torch")

from qig_guard.basin import load_basin  # noqa: E402
from qig_guard.runtime import (  # noqa: E402
    CheckpointError,
    extract_basin_from_checkpoint,
    load_checkpoint_state,
)

MARKER_NAME = "payload-ran"


class Payload:
    """Unpickling this creates a marker file: proof that the payload ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


def _write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        data = bytes(tensor.contiguous().reshape(-1).view(torch.uint8).tolist())
        header[name] = {
            "dtype": "F32",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    return path


def test_stored_target_is_extracted_with_provenance(tmp_path, make_model):
    model = make_model()
    target = torch.randn(64)
    model.basin_matcher.set_target_basin(target)
    checkpoint = tmp_path / "gary.pt"
    torch.save({"model_state_dict": model.state_dict(), "step": 12}, checkpoint)
    out = extract_basin_from_checkpoint(checkpoint, tmp_path / "gary.json", training_steps=12)
    loaded = load_basin(out)
    assert loaded.basin == pytest.approx(target.tolist())
    assert loaded.source_model == "gary" and loaded.metadata["training_steps"] == 12
    provenance = loaded.metadata["provenance"]
    assert provenance["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert out.stat().st_size < 4096


def test_basin_is_computed_from_weights_in_eval_mode(tmp_path, make_model):
    trained = make_model(seed=3, dropout=0.5)
    checkpoint = tmp_path / "weights.bin"
    torch.save(trained.state_dict(), checkpoint)
    with pytest.raises(CheckpointError, match="model="):
        extract_basin_from_checkpoint(checkpoint, tmp_path / "x.json")
    fresh = make_model(seed=4, dropout=0.5)
    fresh.train()
    out = extract_basin_from_checkpoint(checkpoint, tmp_path / "b.json", model=fresh)
    assert fresh.training
    trained.eval()
    with torch.no_grad():
        expected = trained.compute_basin()
    assert load_basin(out).basin == pytest.approx(expected.tolist(), abs=1e-6)


def test_a_model_of_the_wrong_architecture_is_a_clear_error(tmp_path, make_model):
    checkpoint = tmp_path / "small.pt"
    torch.save(make_model().state_dict(), checkpoint)
    with pytest.raises(CheckpointError, match="does not match"):
        extract_basin_from_checkpoint(checkpoint, tmp_path / "b.json", model=make_model(d_model=48))


def test_safetensors_is_read_by_content_whatever_its_name(tmp_path):
    target = torch.linspace(-1, 1, 64)
    path = _write_safetensors(
        tmp_path / "model.pt",
        {"basin_matcher.target_basin": target, "layer.weight": torch.ones(2, 3)},
    )
    state = load_checkpoint_state(path)
    assert torch.equal(state["layer.weight"], torch.ones(2, 3))
    out = extract_basin_from_checkpoint(path, tmp_path / "b.json")
    assert load_basin(out).basin == pytest.approx(target.tolist())


def _assert_refused_without_running(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError):
        extract_basin_from_checkpoint(path, tmp_path / "b.json")
    assert not (tmp_path / MARKER_NAME).exists()
    assert not (tmp_path / "b.json").exists()


def test_malicious_torch_checkpoint_is_refused_and_never_runs(tmp_path, monkeypatch):
    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": {"w": torch.ones(1)}, "x": Payload(MARKER_NAME)}, path)
    _assert_refused_without_running(path, tmp_path, monkeypatch)
    # The payload is real: plain unpickling would run it.
    monkeypatch.chdir(tmp_path)
    torch.load(path, weights_only=False)
    assert (tmp_path / MARKER_NAME).exists()


def test_renamed_legacy_pickle_is_refused_and_never_runs(tmp_path, monkeypatch):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(pickle.dumps({"w": Payload(MARKER_NAME)}, protocol=2))
    _assert_refused_without_running(path, tmp_path, monkeypatch)


@pytest.mark.parametrize("kind", ["zip", "safetensors"])
def test_truncated_checkpoints_are_refused(tmp_path, make_model, kind):
    path = tmp_path / "ck"
    if kind == "zip":
        torch.save(make_model().state_dict(), path)
    else:
        _write_safetensors(path, {"basin_matcher.target_basin": torch.zeros(64)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(CheckpointError, match=r"truncated|corrupt"):
        load_checkpoint_state(path)


def test_size_and_tensor_caps_apply_before_loading(tmp_path, make_model):
    path = tmp_path / "ck.pt"
    torch.save(make_model().state_dict(), path)
    with pytest.raises(CheckpointError, match="cap"):
        load_checkpoint_state(path, max_tensors=3)
    with pytest.raises(CheckpointError, match="cap"):
        load_checkpoint_state(path, max_bytes=1000)


def test_a_multi_element_has_target_is_a_clear_error(tmp_path, make_model):
    state = make_model().state_dict()
    state["basin_matcher.has_target"] = torch.tensor([True, False])
    checkpoint = tmp_path / "odd.pt"
    torch.save(state, checkpoint)
    with pytest.raises(CheckpointError, match="has_target holds 2 elements; expected one"):
        extract_basin_from_checkpoint(checkpoint, tmp_path / "odd.json")


def test_an_out_of_range_fisher_estimator_is_a_clear_error(tmp_path, make_model):
    model = make_model()
    model.basin_matcher.set_target_basin(torch.randn(64))
    state = model.state_dict()
    state["basin_matcher.fisher_samples"] = torch.tensor(8)
    state["basin_matcher.fisher_estimator"] = torch.tensor(99)
    checkpoint = tmp_path / "odd.pt"
    torch.save(state, checkpoint)
    with pytest.raises(CheckpointError, match=r"fisher_estimator is 99, not an index .*0 to 2"):
        extract_basin_from_checkpoint(checkpoint, tmp_path / "odd.json")


@pytest.mark.parametrize(
    "prefix", ["module.", "_orig_mod.", "model.", "module._orig_mod.", "model.module._orig_mod."]
)
def test_wrapped_checkpoints_are_unwrapped_including_the_target(tmp_path, make_model, prefix):
    model = make_model(seed=2)
    target = torch.randn(64)
    model.basin_matcher.set_target_basin(target)
    wrapped = {prefix + key: value for key, value in model.state_dict().items()}
    checkpoint = tmp_path / "wrapped.pt"
    torch.save({"state_dict": wrapped}, checkpoint)
    fresh = make_model(seed=3)
    fresh.load_state_dict(load_checkpoint_state(checkpoint))
    assert torch.equal(fresh.lm_head.weight, model.lm_head.weight)
    out = extract_basin_from_checkpoint(checkpoint, tmp_path / "b.json")
    assert load_basin(out).basin == pytest.approx(target.tolist())


def test_colliding_unwrapped_keys_are_refused(tmp_path):
    checkpoint = tmp_path / "both.pt"
    torch.save({"module.w": torch.ones(1), "w": torch.zeros(1)}, checkpoint)
    with pytest.raises(CheckpointError, match="unwrap to 'w'"):
        load_checkpoint_state(checkpoint)


def test_extracted_from_may_be_given_and_long_paths_keep_the_file_small(tmp_path, make_model):
    model = make_model()
    model.basin_matcher.set_target_basin(torch.randn(64))
    model.basin_matcher.set_fisher_diag(torch.rand(64) + 0.5, "empirical", 10)
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 40)
    deep.mkdir(parents=True)
    checkpoint = deep / ("x" * 240 + ".pt")
    torch.save(model.state_dict(), checkpoint)
    out = extract_basin_from_checkpoint(checkpoint, tmp_path / "long.json")
    assert out.stat().st_size < 4096
    assert load_basin(out).metadata["provenance"]["extracted_from"].startswith(".../xxx")
    named = extract_basin_from_checkpoint(
        checkpoint, tmp_path / "named.json", extracted_from="runs/42/last.pt"
    )
    assert load_basin(named).metadata["provenance"]["extracted_from"] == "runs/42/last.pt"
