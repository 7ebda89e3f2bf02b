"""QIG001 weight-copy: realistic flagged and quiet shapes."""

from __future__ import annotations

import textwrap

import pytest
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.rules.qig001_weight_copy import WeightCopy


def _lines(source: str) -> list[int]:
    return [finding.line for finding in rule_findings(WeightCopy, source)]


FLAGGED = {
    "spec-example": """
        student_model.load_state_dict(teacher_model.state_dict())  # 2
    """,
    "strict-false-keyword-state-dict": """
        student.load_state_dict(state_dict=teacher.state_dict(), strict=False)  # 2
    """,
    "local-variable-later-in-function": """
        import torch

        def distil(teacher, student, loader):
            sd = teacher.state_dict()
            for batch in loader:
                pass
            student.load_state_dict(sd)  # 8
    """,
    "deepcopy-alias": """
        from copy import deepcopy as dc

        class Trainer:
            def warm_start(self):
                snapshot = dc(self.teacher.state_dict())
                self.student.load_state_dict(snapshot, strict=False)  # 7
    """,
    "dict-comprehension-filtering-keys": """
        def transfer_encoder(gary_a, gary_b):
            encoder = {
                k.replace("module.", ""): v.clone()
                for k, v in gary_a.state_dict().items()
                if k.startswith("encoder.")
            }
            gary_b.load_state_dict(encoder, strict=False)  # 8
    """,
    "comprehension-over-tracked-local": """
        sd = teacher.state_dict()
        sd = {k: v for k, v in sd.items() if "head" not in k}
        student.load_state_dict(sd)  # 4
    """,
    "submodule-copy": """
        self.student.encoder.load_state_dict(self.teacher.encoder.state_dict())  # 2
    """,
    "indexed-models": """
        for i in range(1, len(models)):
            models[i].load_state_dict(models[0].state_dict())  # 3
    """,
    "dict-and-copy-wrappers": """
        student.load_state_dict(dict(teacher.state_dict()).copy())  # 2
    """,
    "zip-parameters-data-copy": """
        import torch

        with torch.no_grad():
            for p, q in zip(student.parameters(), teacher.parameters()):
                p.data.copy_(q.data)  # 6
    """,
    "zip-parameters-in-place-copy-reversed": """
        for p_s, p_t in zip(list(student.parameters()), list(teacher.parameters())):
            p_t.copy_(p_s.detach())  # 3
    """,
    "zip-over-local-parameter-lists": """
        def hard_sync(gary_a, gary_b):
            src = list(gary_a.parameters())
            dst = list(gary_b.parameters())
            for target, source in zip(dst, src):
                target.data.copy_(source.data)  # 6
    """,
    "inline-deepcopy-and-comprehension": """
        import copy

        student.load_state_dict(copy.deepcopy(teacher.state_dict()))  # 4
        student.load_state_dict({k: teacher.state_dict()[k] for k in keys})  # 5
    """,
    "zip-parameters-data-assignment": """
        def clone_weights(dst, src):
            for a, b in zip(dst.parameters(), src.parameters()):
                a.data = b.data.clone()  # 4
    """,
    "zip-named-parameters-slice-assignment": """
        for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            p.data[:] = q.data  # 3
    """,
    "list-comprehension-copy": """
        import torch

        with torch.no_grad():
            [p.data.copy_(q.data) for p, q in zip(student.parameters(), teacher.parameters())]  # 5
            torch._foreach_add_(list(student.parameters()), 1.0)
    """,
    "vector-to-parameters-imported-alias": """
        from torch.nn.utils import parameters_to_vector as p2v, vector_to_parameters as v2p

        v2p(p2v(b.parameters()), a.parameters())  # 4
    """,
    "vector-to-parameters-via-local": """
        import torch

        flat = torch.nn.utils.parameters_to_vector(teacher.parameters()).detach()
        torch.nn.utils.vector_to_parameters(flat, student.parameters())  # 5
    """,
    "self-loads-other": """
        class Gary(nn.Module):
            def absorb(self, other):
                self.load_state_dict(other.state_dict())  # 4
    """,
    "blend-of-two-models-per-key-then-loaded": """
        def pull_toward(donor, receiver, rate):
            theirs = donor.head.state_dict()
            mine = receiver.head.state_dict()
            merged = {}
            for name in theirs:
                if name in mine:
                    d, r = theirs[name], mine[name]
                    step = r * (1 - rate) + d * rate
                    merged[name] = step
                else:
                    merged[name] = mine.get(name, theirs[name])
            receiver.head.load_state_dict(merged)  # 13
    """,
    "two-parents-averaged-into-a-child": """
        def offspring(mother, father, child, mix):
            a_sd = mother.body.state_dict()
            b_sd = father.body.state_dict()
            c_sd = child.body.state_dict()
            out = {}
            for key in a_sd:
                parents = a_sd[key] * mix + b_sd[key] * (1 - mix)
                out[key] = c_sd[key] * 0.3 + parents * 0.7
            child.body.load_state_dict(out)  # 10
    """,
    "key-by-key-copy-into-own-state-dict-then-loaded": """
        def adopt(src_net, dst_net):
            dst_sd = dst_net.state_dict()
            src_sd = src_net.state_dict()
            for k in dst_sd:
                dst_sd[k] = src_sd[k].clone()
            dst_net.load_state_dict(dst_sd)  # 7
    """,
    "key-by-key-in-place-copy-into-state-dict": """
        def mirror(left, right):
            left_sd, right_sd = left.state_dict(), right.state_dict()
            for k in left_sd:
                left_sd[k].copy_(right_sd[k])  # 5
    """,
    "weight-dict-from-another-models-parameters": """
        def warm(teacher, student):
            sd = {n: p.detach().clone() for n, p in teacher.named_parameters()}
            student.load_state_dict(sd, strict=False)  # 4
    """,
    "model-deep-copies-itself-into-a-new-kernel": """
        import copy
        import torch.nn as nn

        class Kernel(nn.Module):
            def forward(self, x):
                return x

            def spawn(self, mutation):
                child = copy.deepcopy(self)  # 10
                child.basin = self.basin + mutation
                return child
    """,
    "update-with-other-models-entries": """
        def graft(a, b):
            sd = a.state_dict()
            sd.update({k: v for k, v in b.state_dict().items() if k.startswith("enc")})
            a.load_state_dict(sd)  # 5
    """,
}

QUIET = {
    "checkpoint-restore": """
        import torch

        model.load_state_dict(torch.load(path, weights_only=True)["model_state_dict"])
        model.load_state_dict(checkpoint["state_dict"])
    """,
    "checkpoint-via-local": """
        checkpoint = torch.load(ckpt_path, map_location="cpu")
        state = checkpoint["model_state_dict"] if "model_state_dict" in checkpoint else checkpoint
        model.load_state_dict(state, strict=False)
    """,
    "own-best-state-restore": """
        import copy

        def fit(model, epochs):
            best_state = copy.deepcopy(model.state_dict())
            for epoch in range(epochs):
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            model.load_state_dict(best_state)
    """,
    "ddp-unwrapped-same-model": """
        model.module.load_state_dict(model.state_dict())
    """,
    "local-rebound-to-checkpoint": """
        sd = teacher.state_dict()
        sd = torch.load("gary_b.pt")
        student.load_state_dict(sd)
    """,
    "state-dict-parameter": """
        def restore(model, state_dict):
            model.load_state_dict(state_dict)
    """,
    "locals-do-not-leak-between-functions": """
        def snapshot(teacher):
            sd = teacher.state_dict()
            return sd

        def restore(student, sd):
            student.load_state_dict(sd)
    """,
    "optimizer-and-scheduler-state": """
        new_optimizer.load_state_dict(optimizer.state_dict())
        self.lr_scheduler.load_state_dict(old_scheduler.state_dict())
        scaler.load_state_dict(trainer.scaler.state_dict())
    """,
    "ema-update-mul-add": """
        import torch

        @torch.no_grad()
        def update_ema(ema, model, d=0.999):
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.mul_(d).add_(p, alpha=1 - d)
    """,
    "ema-update-copy-of-blend": """
        for p_ema, p in zip(ema.parameters(), model.parameters()):
            p_ema.copy_(d * p_ema + (1 - d) * p)
            p_ema.data = d * p_ema.data + (1 - d) * p.data
    """,
    "zip-with-saved-tensors": """
        backup = [p.detach().clone() for p in model.parameters()]
        for p, saved in zip(model.parameters(), backup):
            p.data.copy_(saved)
    """,
    "comprehension-over-unrelated-zip": """
        norms = [p.norm() - q.norm() for p, q in zip(a.parameters(), b.parameters())]
        copies = [x.copy_(y) for x, y in zip(buffers, saved)]
    """,
    "local-parameter-lists-of-one-model": """
        params = list(model.parameters())
        snapshot = [p.detach().clone() for p in params]
        for p, saved in zip(params, snapshot):
            p.data.copy_(saved)
        params = [w for w in other.parameters()]
        for p, q in zip(params, list(other.parameters())):
            p.copy_(q)
    """,
    "zip-same-model": """
        for p, q in zip(model.parameters(), model.parameters()):
            p.copy_(q)
    """,
    "copy-outside-loop-uses-other-names": """
        for p, q in zip(student.parameters(), teacher.parameters()):
            loss = loss + (p - q).pow(2).sum()
        buffer.copy_(other)
    """,
    "zero-state-dict-comprehension": """
        zeros = {k: torch.zeros_like(v) for k, v in teacher.state_dict().items()}
        student.load_state_dict(zeros)
    """,
    "vector-restore-own-parameters": """
        from torch.nn.utils import parameters_to_vector, vector_to_parameters

        old = parameters_to_vector(policy.parameters())
        vector_to_parameters(old + step * direction, policy.parameters())
        vector_to_parameters(old, policy.parameters())
    """,
    "shadowed-vector-to-parameters": """
        def vector_to_parameters(vec, params):
            pass

        vector_to_parameters(parameters_to_vector(b.parameters()), a.parameters())
    """,
    "own-state-reload": """
        model.load_state_dict(model.state_dict())
    """,
    "same-model-surgery-grows-its-own-rows": """
        import torch

        def grow(model, extra_rows):
            sd = model.state_dict()
            sd["emb.weight"] = torch.cat([sd["emb.weight"], extra_rows])
            for k in sd:
                sd[k] = sd[k].float()
            model.load_state_dict(sd)
    """,
    "deep-copies-that-are-not-new-kernels": """
        import copy

        class Kernel(nn.Module):
            def forward(self, x):
                return x

            def snapshot(self):
                best = copy.deepcopy(self)
                return best

        class Settings:
            def variant(self):
                other = copy.deepcopy(self)
                other.name = "variant"
                return other
    """,
    "own-parameters-dict-reloaded": """
        def reset(student):
            own = {n: p.detach().clone() for n, p in student.named_parameters()}
            student.load_state_dict(own)
    """,
    "ema-blend-per-key-into-the-shadow": """
        def ema_step(ema_model, model, decay):
            shadow = ema_model.state_dict()
            live = model.state_dict()
            for k in shadow:
                shadow[k] = decay * shadow[k] + (1 - decay) * live[k]
            ema_model.load_state_dict(shadow)
    """,
    "shapes-only-of-another-models-entries": """
        import torch

        def reset_like(template, net):
            t_sd = template.state_dict()
            fresh = {}
            for k in t_sd:
                fresh[k] = torch.zeros_like(t_sd[k])
            noise = {k: torch.randn(v.shape) for k, v in t_sd.items()}
            net.load_state_dict(fresh)
            net.load_state_dict(noise)
    """,
    "checkpoint-entries-renamed-then-restored": """
        import torch

        def restore(model, path):
            ckpt = torch.load(path, weights_only=True)
            sd = {}
            for k, v in ckpt["model"].items():
                sd[k.replace("module.", "")] = v
            model.load_state_dict(sd)
    """,
    "ema-and-target-network-initialisation": """
        ema_model.load_state_dict(model.state_dict())
        self.model_ema.load_state_dict(self.model.state_dict())
        target_net.load_state_dict(policy_net.state_dict())
        for p_swa, p in zip(swa_model.parameters(), model.parameters()):
            p_swa.data.copy_(p.data)
    """,
}


@pytest.mark.parametrize("source", FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str) -> None:
    expected = [
        index
        for index, line in enumerate(textwrap.dedent(source).splitlines(), start=1)
        if line.rstrip().endswith(f"# {index}")
    ]
    assert expected, "each flagged case marks its expected lines"
    assert _lines(source) == expected


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet(source: str) -> None:
    assert _lines(source) == []


def test_message_names_both_models() -> None:
    source = b"student.load_state_dict(teacher.state_dict())\n"
    (finding,) = check_source("t.py", source, Config(), [WeightCopy]).findings
    assert "`teacher`" in finding.message and "`student`" in finding.message
    assert finding.fix is None


def test_trigger_skips_files_without_copy_apis() -> None:
    assert not rule_findings(WeightCopy, "basin = model.basin_matcher.current_basin\n", Config())
    assert not rule_findings(
        WeightCopy, "for p in model.parameters():\n    p.grad = None\n", Config()
    )
    for source in FLAGGED.values():
        assert gate_passes(WeightCopy, textwrap.dedent(source), Config())


def test_weight_copy_allowed_is_configurable() -> None:
    source = b"ema_model.load_state_dict(model.state_dict())\n"
    flagged = check_source("m.py", source, Config(weight_copy_allowed=()), [WeightCopy])
    assert [f.code for f in flagged.findings] == ["QIG001"]


@pytest.mark.parametrize(
    "source",
    [
        # a full restore from a checkpoint, beside a checkpoint save (the common look-alike)
        'torch.save({"model_state_dict": model.state_dict()}, path)\n'
        "checkpoint = torch.load(path, weights_only=True)\n"
        'model.load_state_dict(checkpoint["model_state_dict"])\n',
        'model.load_state_dict(\n    torch.load(path, map_location="cpu", weights_only=True)\n)\n',
        'state = checkpoint["model"]\nmodel.load_state_dict(state, strict=False)\n',
    ],
)
def test_trigger_skips_checkpoint_restores(source: str) -> None:
    assert not rule_findings(WeightCopy, source, Config())


@pytest.mark.parametrize(
    "source",
    [
        "a = b = teacher.state_dict()\nstudent.load_state_dict(a)\n",
        "sd = teacher.state_dict(\n)\nkept = {k: v for k, v in sd.items()}\n"
        "student.load_state_dict(kept)\n",
        "student.load_state_dict(  # from the teacher\n    teacher.state_dict()\n)\n",
        'sd = f("""x""", teacher.state_dict())\nstudent.load_state_dict(sd)\n',
        "sd = teacher \\\n    .state_dict()\nstudent.load_state_dict(sd)\n",
    ],
)
def test_trigger_accepts_state_dicts_through_names_and_odd_layout(source: str) -> None:
    assert gate_passes(WeightCopy, source, Config())


def test_trigger_needs_parameters_in_or_behind_the_zip() -> None:
    unrelated = textwrap.dedent(
        """
        n_parameters = sum(p.numel() for p in model.parameters())
        for i, (x, y) in enumerate(zip(inputs, targets)):
            outputs[i] = model(x) - y
        """
    )
    assert not rule_findings(WeightCopy, unrelated, Config())
    through_names = textwrap.dedent(
        """
        mine = list(student.parameters())
        theirs = list(teacher.parameters())
        for p, q in zip(mine, theirs):
            p.data.copy_(q.data)
        """
    )
    assert gate_passes(WeightCopy, through_names, Config())
    assert [
        f.code
        for f in check_source("m.py", through_names.encode(), Config(), [WeightCopy]).findings
    ] == ["QIG001"]


# -- value-keeping methods and optimizer words are facts shared with other rules (issue 16) --


def test_a_cast_copy_of_another_models_parameters_is_a_weight_copy() -> None:
    source = """
        def merge(student, teacher):
            for p, q in zip(student.parameters(), teacher.parameters()):
                p.data.copy_(q.data.half())  # 4
    """
    assert _lines(source) == [4]


def test_an_optimizer_named_after_its_class_is_not_a_model() -> None:
    assert (
        _lines("""
        def restore(adam, other):
            adam.load_state_dict(other.adam.state_dict())
    """)
        == []
    )
