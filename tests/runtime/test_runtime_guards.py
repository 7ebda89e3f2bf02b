"""Runtime guards: a frozen Ocean and no weight sharing."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from qig_guard.runtime import (  # noqa: E402
    FrozenParameterError,
    WeightSharingError,
    assert_no_weight_sharing,
    frozen,
    load_checkpoint_state,
)


def _loss(model, ids):
    logits, _ = model(ids)
    return logits.logsumexp(-1).mean()


def test_an_optimizer_step_on_ocean_parameters_is_caught(make_model):
    ocean = make_model()
    ids = torch.randint(0, 40, (2, 5))
    _loss(ocean, ids).backward()  # gradients from before the guard, as in a leaked training loop
    optimizer = torch.optim.SGD(ocean.parameters(), lr=0.1)
    before = ocean.lm_head.weight.detach().clone()
    with frozen(ocean), pytest.raises(FrozenParameterError, match="would update frozen"):
        optimizer.step()
    assert torch.equal(ocean.lm_head.weight, before)


def test_a_gradient_reaching_ocean_is_caught_at_backward(make_model):
    ocean = make_model()
    with frozen(ocean), pytest.raises(FrozenParameterError, match="gradient reached"):
        _loss(ocean, torch.randint(0, 40, (2, 5))).backward()


def test_training_another_model_is_allowed_and_hooks_go_away(make_model):
    ocean, active = make_model(seed=0), make_model(seed=1)
    optimizer = torch.optim.Adam(active.parameters(), lr=1e-3)
    with frozen(ocean):
        with torch.no_grad():
            ocean(torch.randint(0, 40, (1, 4)))  # measuring the Ocean is fine
        _loss(active, torch.randint(0, 40, (2, 5))).backward()
        optimizer.step()
    _loss(ocean, torch.randint(0, 40, (2, 5))).backward()  # guard removed on exit
    torch.optim.SGD(ocean.parameters(), lr=0.1).step()


def test_frozen_works_as_a_decorator(make_model):
    ocean = make_model()
    guard = frozen(ocean)

    @guard
    def train_ocean() -> None:
        _loss(ocean, torch.randint(0, 40, (2, 5))).backward()

    with pytest.raises(FrozenParameterError):
        train_ocean()
    with pytest.raises(FrozenParameterError):
        train_ocean()  # re-entrant: a fresh set of hooks per call


def test_independent_models_share_no_weights(make_model):
    assert_no_weight_sharing(make_model(seed=0), make_model(seed=1))


def test_shared_storage_is_detected(make_model):
    teacher, student = make_model(seed=0), make_model(seed=1)
    student.block = teacher.block
    with pytest.raises(WeightSharingError, match="shares storage"):
        assert_no_weight_sharing(student, teacher)


def test_copied_values_are_detected(make_model):
    teacher, student = make_model(seed=0), make_model(seed=1)
    with torch.no_grad():
        student.lm_head.weight.copy_(teacher.lm_head.weight)
    with pytest.raises(WeightSharingError, match=r"lm_head\.weight has the same values"):
        assert_no_weight_sharing(student, teacher)


def test_weights_copied_through_a_checkpoint_file_are_detected(tmp_path, make_model):
    # A copy through a file is invisible to static analysis: the runtime check catches it.
    teacher, student = make_model(seed=0), make_model(seed=1)
    torch.save(teacher.state_dict(), tmp_path / "teacher.pt")
    student.load_state_dict(load_checkpoint_state(tmp_path / "teacher.pt"))
    with pytest.raises(WeightSharingError, match="token_embedding"):
        assert_no_weight_sharing(student, teacher)


def test_train_mode_on_ocean_or_a_submodule_is_caught_and_eval_is_allowed(make_model):
    ocean = make_model()
    ocean.eval()
    with frozen(ocean):
        ocean.eval()
        with pytest.raises(FrozenParameterError, match=r"QIGKernelRecursive\.train\(\)"):
            ocean.train()  # noqa: QIG003
        with pytest.raises(FrozenParameterError, match=r"QIGKernelRecursive\.block\.train\(\)"):
            ocean.block.train()  # noqa: QIG003
    assert not ocean.training
    ocean.train()  # the guard is gone on exit  # noqa: QIG003
    assert ocean.training and "train" not in vars(ocean)


def test_requires_grad_turned_back_on_is_caught(make_model):
    ocean = make_model()
    ocean.requires_grad_(False)
    with pytest.raises(FrozenParameterError, match=r"requires_grad_\(True\).*lm_head\.weight"):  # noqa: SIM117
        with frozen(ocean):
            ocean.lm_head.weight.requires_grad_(True)  # noqa: QIG003
            _loss(ocean, torch.randint(0, 40, (2, 5))).backward()
    assert ocean.lm_head.weight.grad is not None  # what the guard reports: the grad leaked


def test_in_place_edits_under_no_grad_are_caught(make_model):
    ocean = make_model()
    with pytest.raises(FrozenParameterError, match=r"'block\.out\.bias' was modified in place"):  # noqa: SIM117
        with frozen(ocean), torch.no_grad():
            ocean.block.out.bias.add_(1.0)


def test_load_state_dict_into_ocean_is_caught(make_model):
    ocean, other = make_model(seed=0), make_model(seed=1)
    before = ocean.lm_head.weight.detach().clone()
    with frozen(ocean), pytest.raises(FrozenParameterError, match=r"\.load_state_dict\(\)"):
        ocean.load_state_dict(other.state_dict())  # noqa: QIG001
    assert torch.equal(ocean.lm_head.weight, before)
    ocean.load_state_dict(other.state_dict())  # allowed again after the guard  # noqa: QIG001


def test_nested_guards_restore_each_other(make_model):
    ocean = make_model()
    with frozen(ocean):
        with frozen(ocean):
            pass
        with pytest.raises(FrozenParameterError):
            ocean.train()  # noqa: QIG003
    ocean.train()  # noqa: QIG003
