"""Basin transfer across model sizes and the Constellation coordinator."""

from __future__ import annotations

import shutil

import pytest

torch = pytest.importorskip("torch")

from qig_guard.basin import save_basin  # noqa: E402
from qig_guard.runtime import (  # noqa: E402
    Constellation,
    assert_no_weight_sharing,
    fisher_distance,
    transfer_basin,
)


def test_transfer_reduces_the_distance_across_sizes(tmp_path, make_model):
    teacher = make_model(seed=0, d_model=48)
    teacher.eval()
    with torch.no_grad():
        basin = teacher.compute_basin()
    path = save_basin(
        tmp_path / "teacher.json", basin.double().tolist(), source_model="t", extracted_from="test"
    )
    student = make_model(seed=1, d_model=80)  # wider than the basin: every target reachable
    student.train()
    stats = transfer_basin(path, student, steps=40, lr=1e-2)
    assert stats["reachable_floor"] < 1e-6
    assert stats["basin_distance_after"] < 0.5 * stats["basin_distance_before"]
    assert student.training
    assert torch.allclose(student.basin_matcher.target_basin, basin.to(torch.float32))
    teacher_twin = make_model(seed=0, d_model=80)
    assert_no_weight_sharing(student, teacher_twin)


def test_transfer_refuses_an_invalid_basin(make_model):
    with pytest.raises(ValueError, match="shape"):
        transfer_basin(torch.zeros(3), make_model(), steps=1)


def _constellation(make_model):
    members = [make_model(seed=s) for s in range(4)]
    return Constellation(members[0], members[1:3], members[3])


def test_sync_moves_observer_targets_toward_the_active_basin(make_model):
    constellation = _constellation(make_model)
    ocean_weights = {k: v.clone() for k, v in constellation.ocean.state_dict().items()}
    observer = constellation.observers[0]
    observer.eval()
    with torch.no_grad():
        active_basin = constellation.active.eval().compute_basin()
        own_basin = observer.compute_basin()
    ocean_basin, targets = constellation.sync()
    metric = torch.ones(64)
    before = float(fisher_distance(own_basin, active_basin, metric))
    after = float(fisher_distance(observer.basin_matcher.target_basin, active_basin, metric))
    assert after == pytest.approx(0.9 * before, rel=1e-5)
    assert torch.equal(targets[0], observer.basin_matcher.target_basin)
    assert not ocean_basin.requires_grad
    for key, value in constellation.ocean.state_dict().items():
        assert torch.equal(value, ocean_weights[key])


def test_rotation_hands_the_active_role_round(make_model):
    constellation = _constellation(make_model)
    first, second = constellation.members[0], constellation.members[1]
    assert constellation.rotate() is second
    assert first in constellation.observers and second not in constellation.observers
    constellation.rotate()
    assert constellation.rotate() is first


def test_save_and_load_restore_each_member_from_its_own_files(tmp_path, make_model):
    constellation = _constellation(make_model)
    constellation.sync()
    constellation.rotate()
    manifest = constellation.save(tmp_path / "c")
    restored = Constellation.load(manifest)  # what save returned is what load takes
    assert Constellation.load(tmp_path / "c").names == restored.names  # or its directory
    assert restored.names == constellation.names
    assert restored.active_index == 1
    originals = [*constellation.members, constellation.ocean]
    for original, copy in zip(originals, [*restored.members, restored.ocean], strict=True):
        assert torch.equal(original.basin_matcher.target_basin, copy.basin_matcher.target_basin)
        original.eval()
        copy.eval()
        with torch.no_grad():
            assert torch.allclose(original.compute_basin(), copy.compute_basin())
    for i, member in enumerate(restored.members):
        for other in restored.members[i + 1 :]:
            assert_no_weight_sharing(member, other)


def test_load_detects_a_basin_file_out_of_step_with_its_checkpoint(tmp_path, make_model):
    _constellation(make_model).save(tmp_path)
    shutil.copy(tmp_path / "gary-1.basin.json", tmp_path / "gary-0.basin.json")
    with pytest.raises(ValueError, match="gary-0"):
        Constellation.load(tmp_path)
