"""QIG008 sleep-fresh-data: new or random data fed to the model in sleep code."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.rules.qig008_sleep_fresh_data import SleepFreshData


def findings(source: str, config: Config | None = None) -> list[tuple[int, str]]:
    return [(f.line, f.message) for f in rule_findings(SleepFreshData, source, config)]


def lines(source: str, config: Config | None = None) -> list[int]:
    return [line for line, _ in findings(source, config)]


FLAGGED = {
    "randn-as-model-input": (
        """
        import torch

        def dream(model, steps=10):
            for _ in range(steps):
                out = model(torch.randn(8, 128))  # line 6
        """,
        [6],
    ),
    "aliased-random-through-variable": (
        """
        from torch import rand_like as noise_like

        class SleepProtocol:
            def consolidate(self, basin):
                noise = noise_like(basin) * 0.1  # line 6: reported where it is made
                return self.model.forward(basin + noise)  # line 7
        """,
        [6],
    ),
    "numpy-random-basin": (
        """
        import numpy as np

        def consolidate(model):
            target_basin = np.random.normal(size=64)  # line 5
            model.basin_matcher.set_target_basin(target_basin)
        """,
        [5],
    ),
    "random-into-setter-and-keyword": (
        """
        import torch

        def sleep(model, matcher):
            matcher.set_target_basin(torch.randn(64).to("cpu"))  # line 5
            fisher_distance(model.current_basin, target_basin=torch.rand(64))  # line 6
        """,
        [5, 6],
    ),
    "random-basin-under-no-grad-still-a-basin": (
        """
        import torch

        def dream(self):
            with torch.no_grad():
                self.basin_matcher.target_basin.data = torch.randn(64)  # line 6
        """,
        [6],
    ),
    "random-tokens-to-self-net": (
        """
        import torch as T

        class DreamPhase:
            def __call__(self, vocab_size):
                ids = T.randint(0, vocab_size, (4, 32))  # line 6
                return self.net(input_ids=ids)
        """,
        [6],
    ),
    "loop-over-random-probes": (
        """
        import torch

        class DreamPhase:
            def run(self, basin):
                probes = torch.randn(4, 64)  # line 6: once, where it is made
                outs = [self.model(p) for p in probes]
                for i, probe in enumerate(probes):
                    self.model.forward(probe)
        """,
        [6],
    ),
    "iterate-dataloader": (
        """
        def consolidation_epoch(model, train_loader, optimizer):
            model.eval()
            for step, batch in enumerate(train_loader):  # line 4
                model(batch).loss.backward()
        """,
        [4],
    ),
    "iterate-dataset-in-comprehension": (
        """
        def sleep(self):
            return [self.model(x) for x in self.dataset]  # line 3
        """,
        [3],
    ),
    "next-iter-loader": (
        """
        def dream(model, loader):
            batch = next(iter(loader))  # line 3
            return model(batch)
        """,
        [3],
    ),
    "construct-dataloader-in-loop": (
        """
        from torch.utils.data import DataLoader

        def consolidate(model, ds):
            for batch in DataLoader(ds, batch_size=8):  # line 5
                model(batch)
        """,
        [5],
    ),
    "hf-load-dataset": (
        """
        from datasets import load_dataset

        def dream(model):
            for row in load_dataset("wikitext", split="train"):  # line 5
                model(row["text"])
        """,
        [5],
    ),
    "method-of-sleep-class-tqdm-loader": (
        """
        from tqdm import tqdm

        class ConsolidationEngine:
            def run(self):
                for batch in tqdm(self.trainloader):  # line 6
                    self.model(batch)
        """,
        [6],
    ),
}


FLAGGED.update(
    {
        "random-token-noise-in-replayed-inputs": (
            """
            import random
            import torch

            def dream_phase(model, replay, steps):
                model.eval()
                for _ in range(steps):
                    tokens = random.choice(replay).clone()
                    noise = torch.randint_like(tokens, 0, 50)  # line 9
                    tokens = torch.where(torch.rand(tokens.shape) < 0.1, noise, tokens)
                    model(tokens).loss.backward()
            """,
            [9],
        ),
        "fabricated-basin-handed-on-in-a-packet": (
            """
            import numpy as np

            def make_sleep_packet(kernel, basin=None):
                if basin is None:
                    basin = np.random.randn(64)  # line 6
                    basin = simplex_normalize(basin)
                return Packet(kernel.name, basin=basin)
            """,
            [6],
        ),
        "fabricated-basin-returned": (
            """
            import torch

            def dream_target(dim):
                target_basin = torch.rand(dim)  # line 5
                return target_basin
            """,
            [5],
        ),
        "random-basin-stored-on-an-object": (
            """
            import numpy as np

            def dream(state):
                fresh = np.random.dirichlet(np.ones(64))  # line 5
                state.identity_basin = fresh
            """,
            [5],
        ),
        "trains-on-a-plain-list-of-new-examples": (
            """
            def consolidate(model, new_examples, optimizer):
                model.eval()
                for example in new_examples:  # line 4
                    loss = model(example).loss
                    loss.backward()
                    optimizer.step()
            """,
            [4],
        ),
        "trains-on-a-curriculum-generator": (
            """
            class SleepCycle:
                def run(self):
                    for batch in self.curriculum.batches():  # line 4
                        self.model(batch).loss.backward()
            """,
            [4],
        ),
        "trains-on-training-data-by-index": (
            """
            def deep_sleep(model, training_data, steps):
                for i in range(steps):
                    out = model(training_data[i % len(training_data)])  # line 4
            """,
            [4],
        ),
        "comprehension-over-new-samples": (
            """
            def dream(net, fresh_samples):
                return [net(x) for x in fresh_samples]  # line 3
            """,
            [3],
        ),
        "basin-replaced-by-a-mean-of-new-experiences": (
            """
            import numpy as np

            class Memory:
                def consolidate(self, new_experiences):
                    self.identity_basin = np.mean(new_experiences, axis=0)  # line 6
            """,
            [6],
        ),
        "basin-replaced-by-a-helper-merging-new-experiences": (
            """
            class Habit:
                def consolidate_sleep(self, new_experiences):
                    pool = list(new_experiences)
                    pool.append({"basin": self._basin})
                    merged = self.merge_experiences(pool)
                    self._basin = merged  # line 7
                    return merged
            """,
            [7],
        ),
        "new-examples-handed-to-a-learning-call": (
            """
            class Consolidator:
                def consolidate(self, incoming_examples):
                    for example in incoming_examples:  # line 4
                        self.learner.learn_from(example)
            """,
            [4],
        ),
        "consolidation-that-trains-on-the-curriculum": (
            """
            class Orchestrator:
                def train_nightly_consolidation(self, name, curriculum_data):
                    return self.train_batch(name, curriculum_data)  # line 4
            """,
            [4],
        ),
        "trains-on-what-a-generator-call-returns": (
            """
            class Dreamer:
                def dream(self):
                    for x in self.generate_examples():  # line 4
                        self.model(x).loss.backward()
            """,
            [4],
        ),
        "trains-on-the-next-item-of-a-data-stream": (
            """
            def consolidate(self, model):
                batch = next(self.data_stream)  # line 3
                model(batch).loss.backward()
            """,
            [3],
        ),
        "noise-written-into-the-identity-basin": (
            """
            import torch

            class Dreamer:
                def dream(self):
                    noise = 0.05 * torch.randn(64)  # line 6
                    self.target_basin = self.target_basin + noise
            """,
            [6],
        ),
        "mean-of-new-data-handed-to-the-setter": (
            """
            import torch

            def consolidate(model, incoming_batches):
                centroid = torch.stack(incoming_batches).mean(0)
                model.basin_matcher.set_target_basin(centroid)  # line 6 (origin: line 5)
            """,
            [5],
        ),
        "dream-trains-a-kernel-on-random-basins": (
            """
            import numpy as np

            def dream_explore(kernel, n):
                for _ in range(n):
                    point = np.random.dirichlet(np.ones(64))  # line 6
                    kernel.learn_from(basin_coords=point, reward=0.1)
            """,
            [6],
        ),
    }
)


@pytest.mark.parametrize(("source", "expected"), FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str, expected: list[int]) -> None:
    assert lines(source) == expected


NOT_FLAGGED = {
    "spec-template": """
        def consolidate_toward_basin(model, target_basin, steps=50, lr=0.0001):
            model.eval()
            for step in range(steps):
                current = model.basin_matcher.current_basin
                loss = fisher_distance(current, target_basin, model.fisher_diag)
                loss.backward()
        """,
    "random-index-into-stored-basins": """
        import torch

        def dream(model, stored_basins):
            i = torch.randint(len(stored_basins), (1,)).item()
            basin = stored_basins[i]
            other_basin = stored_basins[torch.randint(0, len(stored_basins), ())]
            return model.basin_matcher.set_target_basin(basin)
        """,
    "numpy-choice-among-basins": """
        import numpy as np
        import random

        def sleep(model, basin_bank):
            target_basin = np.random.choice(basin_bank)
            basin = random.choice(basin_bank)
            order = np.random.permutation(len(basin_bank))
            return model(target_basin)
        """,
    "seeded-noise-for-measurement-under-no-grad": """
        import torch

        def consolidate(model, basin):
            with torch.no_grad():
                g = torch.Generator().manual_seed(0)
                probe = torch.randn(16, 64, generator=g)
                drift = model(probe).std()
            return drift
        """,
    "decorated-no-grad-measurement": """
        import torch

        class SleepMonitor:
            @torch.no_grad()
            def measure(self):
                return self.model(torch.randn(2, 64)).norm()
        """,
    "coin-flip": """
        import torch

        def dream(model, basin, p=0.5):
            if torch.rand(1).item() < p:
                return model(basin)
            return model(basin * (torch.rand(()) < p))
        """,
    "replay-buffer-given": """
        def sleep(model, replay_buffer, replay_loader, basin_history):
            for experience in replay_buffer:
                model(experience)
            for batch in replay_loader:
                model(batch)
            for past_basin in basin_history:
                model.basin_matcher.set_target_basin(past_basin)
        """,
    "random-not-fed-to-model": """
        import torch

        def consolidate(model, basin):
            jitter = torch.randn(64)
            stats = {"jitter": jitter.norm().item()}
            return model(basin), model(torch.zeros(jitter.shape))
        """,
    "variable-reassigned-before-use": """
        import torch

        def sleep(model, basin):
            x = torch.randn(64)
            x = basin.clone()
            return model(x)
        """,
    "fresh-data-outside-sleep-code": """
        import torch

        def train_epoch(model, loader):
            for batch in loader:
                model(batch + 0.01 * torch.randn_like(batch))
        """,
    "names-about-datasets-are-not-datasets": """
        def consolidate(model, dataset_names, loader_kwargs):
            for name in dataset_names:
                model.basin_matcher.log(name)
            for key in loader_kwargs:
                print(key)
        """,
    "shadowed-torch": """
        def dream(model, torch):
            return model(torch.randn(3))
        """,
    "model-class-constructor": """
        import torch

        def consolidate_factory():
            return QIGKernel(torch.randint(0, 10, (1,)).item())
        """,
}


NOT_FLAGGED.update(
    {
        "test-method-builds-a-random-packet-basin": """
            import numpy as np

            class TestSleepPacket:
                def test_validation(self):
                    packet = SleepPacket(basin_coordinates=np.random.randn(64))
                    assert packet.validate()
            """,
        "test-function-feeds-random-input": """
            import torch

            def test_sleep_consolidation(model):
                model(torch.randn(2, 8)).sum().backward()
            """,
        "demo-builds-random-attractors": """
            import numpy as np

            def demo_sleep_cycle(manifold):
                for _ in range(5):
                    basin = np.random.dirichlet(np.ones(64))
                    manifold.deepen(basin, amount=0.5)
            """,
        "dream-perturbation-only-measured": """
            import numpy as np

            def execute_dream_cycle(self, coords, temperature=0.3):
                basin = np.array(coords)
                perturbation = np.random.randn(64) * temperature
                dreamed_basin = simplex_normalize(basin + perturbation)
                shift = fisher_rao_distance(basin, dreamed_basin)
                plans = self.planner.explore(dreamed_basin)
                self.log.record_basin(basin_coords=dreamed_basin, source="dream")
                return DreamResult(basin_perturbation=shift, plans=len(plans))
            """,
        "dream-returns-a-perturbed-stored-basin": """
            import torch

            def dream_step(stored_basin, scale=0.01):
                explored_basin = stored_basin + scale * torch.randn_like(stored_basin)
                return explored_basin
            """,
        "sleep-packet-decoded-from-bytes": """
            import numpy as np

            class SleepPacket:
                @classmethod
                def from_bytes(cls, data: bytes):
                    basin = np.frombuffer(data[16:], dtype=np.float32)
                    return cls(basin=basin)
            """,
        "sleep-packet-from-a-dict-payload": """
            class SleepPacket:
                def from_dict(cls, data: dict):
                    packet = cls()
                    packet.basin_coords = data["basin_coords"]
                    return packet
            """,
        "new-examples-handed-on-unaveraged": """
            def consolidate(self, new_examples):
                return self.score(basin_inputs=new_examples)
            """,
        "replay-of-stored-experience": """
            def consolidate(self, steps):
                self.model.eval()
                for batch in self.replay_buffer.sample(steps):
                    self.model(batch).loss.backward()
            """,
        "new-examples-only-counted": """
            def consolidate(self, new_examples):
                self.pending += len(new_examples)
                self.log(new_examples)
            """,
        "local-named-data-from-stored-memory": """
            def sleep(self, model):
                data = self.memory.recall()
                return model(data)
            """,
        "inputs-of-a-replayed-item": """
            def dream(self, model):
                item = self.replay.sample()
                return model(item.inputs)
            """,
        "new-data-passed-on-to-sleep-code-judged-there": """
            def nightly_consolidation_task(orchestrator, curriculum_data):
                return orchestrator.train_nightly_consolidation(curriculum_data)
            """,
        "replayed-list-parameter": """
            def consolidate(self, model, replayed):
                for r in replayed:
                    model(r).loss.backward()
            """,
        "own-stored-experiences": """
            def consolidate(self, model):
                for e in self.experiences:
                    model(e).loss.backward()
            """,
        "batches-sampled-from-the-replay-buffer": """
            def dream(self, model):
                for b in self.replay_buffer.sample_batches(4):
                    model(b).loss.backward()
            """,
        "stored-items-encoded-by-a-data-named-call": """
            def dream(self, model):
                for x in self.tokenizer.encode_texts(self.replay):
                    model(x).loss.backward()
            """,
        "trainer-resumes-from-a-flag": """
            def consolidate_runs(trainer, resume):
                trainer.train(resume_from_checkpoint=resume)
            """,
        "tensor-data-attribute": """
            def consolidate(model, basin):
                return model(basin.data)
            """,
        "new-data-measured-under-no-grad": """
            import torch

            def dream(model, new_inputs):
                with torch.no_grad():
                    return model(new_inputs).mean()
            """,
    }
)


@pytest.mark.parametrize("source", NOT_FLAGGED.values(), ids=NOT_FLAGGED.keys())
def test_not_flagged(source: str) -> None:
    assert lines(source) == []


def test_one_finding_per_random_origin() -> None:
    source = """
        import torch

        def dream(model, vocab):
            ids = torch.randint(0, vocab, (4, 64))
            labels = ids.clone()
            model(input_ids=ids, labels=labels)
            return model(ids)
        """
    assert lines(source) == [5]


def test_nested_wrappers_report_once() -> None:
    source = """
        def sleep(model, loader):
            for i, b in enumerate(iter(loader)):
                model(b)
        """
    assert lines(source) == [3]


def test_messages_say_what_and_where() -> None:
    source = "import torch\n\ndef dream(model):\n    model(torch.randn(2))\n"
    ((_, message),) = findings(source)
    assert "`torch.randn(2)`" in message and "`dream`" in message and "fed to the model" in message


def test_sleep_names_come_from_config() -> None:
    source = "def nap(model, loader):\n    for b in loader:\n        model(b)\n"
    assert lines(source) == []
    assert lines(source, replace(Config(), sleep_functions=("nap",))) == [2]


def test_trigger_finds_sleep_code_in_the_tree() -> None:
    nested = "def train(model):\n    def dream_step():\n        return model(torch.randn(3))\n"
    member = "class SleepCycle:\n    def run(self, model):\n        model(torch.randn(3))\n"
    under_if = "if True:\n    def dream(model):\n        model(torch.randn(3))\n"
    for source in (nested, member, under_if):
        assert gate_passes(SleepFreshData, source, Config()), source
        assert lines(source) == [3], source


def test_trigger_needs_sleep_code_and_a_data_api() -> None:
    assert not rule_findings(SleepFreshData, "def sleep(m, basin):\n    m(basin)\n", Config())
    assert not rule_findings(SleepFreshData, "x = torch.randn(3)\n", Config())
    assert gate_passes(SleepFreshData, "def dream(m):\n    m(torch.randn(3))\n", Config())


@pytest.mark.parametrize(("source", "expected"), FLAGGED.values(), ids=FLAGGED.keys())
def test_trigger_passes_every_flagged_case(source: str, expected: list[int]) -> None:
    assert gate_passes(SleepFreshData, textwrap.dedent(source), Config())


TRICKY_FLAGGED = {
    "aliased-numpy-random-module": (
        """
        from numpy import random as npr

        def dream(model):
            return model(npr.uniform(size=(2, 64)))  # line 5
        """,
        [5],
    ),
    "numpy-random-function-imported": (
        """
        from numpy.random import uniform

        def dream(model):
            return model(uniform(size=(2, 64)))  # line 5
        """,
        [5],
    ),
    "aliased-dataloader": (
        """
        from torch.utils.data import DataLoader as DL

        def consolidate(model, data):
            for batch in DL(data):  # line 5
                model(batch)
        """,
        [5],
    ),
    "after-a-dedented-string": (
        '''
        def sleep(model, loader):
            usage = """
        Sleep on stored basins only.
        """
            for batch in loader:  # line 6
                model(batch)
        ''',
        [6],
    ),
}


@pytest.mark.parametrize(("source", "expected"), TRICKY_FLAGGED.values(), ids=TRICKY_FLAGGED.keys())
def test_trigger_sees_aliases_and_strings(source: str, expected: list[int]) -> None:
    assert lines(source) == expected
    assert gate_passes(SleepFreshData, textwrap.dedent(source), Config())


LOOK_ALIKES = {
    "training-loop-beside-consolidation": """
        def train_gary(model, loader, optimizer):
            for batch in loader:
                model(batch).loss.backward()
                optimizer.step()

        def consolidate_gary(model, target_basin, optimizer, steps=50):
            model.eval()
            for _ in range(steps):
                fisher_distance(model.basin_matcher.current_basin, target_basin).backward()
                optimizer.step()
        """,
    "waiting-with-time-sleep-beside-new-data": """
        import asyncio

        async def poll(client, new_examples):
            while True:
                await asyncio.sleep(1.0)
                client.send(new_examples)
        """,
    "sleep-class-without-data": """
        class SleepMonitor:
            def record(self, model):
                return float(model.basin_matcher.current_basin.norm())

        def random_crop(image, size=32):
            return image[..., :size, :size]
        """,
}


@pytest.mark.parametrize("source", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_trigger_skips_clean_look_alikes(source: str) -> None:
    """Speed: data loaders and random APIs outside sleep code need no parse."""
    assert lines(source) == []
    assert not gate_passes(SleepFreshData, textwrap.dedent(source), Config())
    assert not rule_findings(SleepFreshData, textwrap.dedent(source), Config())


EWC = {
    "ewc-class": """
        class EWC:
            def consolidate(self, model, dataloader):
                for x, y in dataloader:
                    F.cross_entropy(model(x), y).backward()
        """,
    "consolidator-squared-gradients": """
        class Consolidator:
            def consolidate(self, model, dataloader):
                fisher = [torch.zeros_like(p) for p in model.parameters()]
                for x, y in dataloader:
                    model.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    for f, p in zip(fisher, model.parameters()):
                        f += p.grad.pow(2)
                return fisher
        """,
    "fisher-estimate-with-clone": """
        def consolidate_weights(model, loader):
            estimate = {}
            for batch in loader:
                model(batch).loss.backward()
                for name, p in model.named_parameters():
                    estimate[name] = estimate.get(name, 0) + p.grad.data.clone().pow(2)
            return estimate
        """,
    "importance-weights": """
        def consolidate_importance(model, loader):
            return [model(x) for x in loader]
        """,
    "regularizer": """
        class ConsolidationRegularizer:
            def update(self, model, dataset):
                for x in dataset:
                    model(x)
        """,
}


@pytest.mark.parametrize("source", EWC.values(), ids=EWC.keys())
def test_elastic_weight_consolidation_is_not_sleep_code(source: str) -> None:
    assert lines(source) == []


def test_sleep_over_data_is_flagged_next_to_an_ewc_class() -> None:
    source = """
        class EWC:
            def consolidate(self, model, dataloader):
                for x, y in dataloader:
                    model(x)

        def sleep(model, loader):
            for batch in loader:  # line 8
                model(batch)
        """
    assert lines(source) == [8]


@pytest.mark.parametrize(
    "path",
    ["tests/sleep_helpers.py", "pkg/test_sleep.py", "pkg/sleep_test.py", "conftest.py"],
)
def test_test_files_are_not_sleep_code(path: str) -> None:
    source = "import torch\n\ndef dream(model):\n    model(torch.randn(2))\n"
    result = check_source(path, source.encode(), Config(), [SleepFreshData])
    assert [f.code for f in result.findings] == []
    assert [
        f.code
        for f in check_source("pkg/dream.py", source.encode(), Config(), [SleepFreshData]).findings
    ] == ["QIG008"]


# -- no-grad contexts and random sources are facts shared with QIG004/QIG006 (issue 16) --

GRADIENTS_OFF = {
    "grad-mode-no-grad": "torch.autograd.grad_mode.no_grad()",
    "set-grad-enabled-false": "torch.set_grad_enabled(False)",
}


@pytest.mark.parametrize("context", GRADIENTS_OFF.values(), ids=GRADIENTS_OFF.keys())
def test_every_spelling_of_no_grad_is_a_measurement(context: str) -> None:
    source = f"""
        import torch

        def consolidate(model, basin):
            with {context}:
                probe = torch.randn(16, 64)
                drift = model(probe).std()
            return drift
    """
    assert lines(source) == []
    assert lines(source.replace(context, "torch.set_grad_enabled(True)")) == [6]


def test_stdlib_random_numbers_fed_to_the_model_are_random_data() -> None:
    source = """
        from random import gauss

        def dream(model, steps=10):
            for _ in range(steps):
                out = model([gauss(0, 1) for _ in range(64)])  # line 6
    """
    assert lines(source) == [6]
    assert gate_passes(SleepFreshData, textwrap.dedent(source), Config())


def test_stdlib_random_choice_of_stored_basins_is_quiet() -> None:
    assert (
        lines("""
        import random

        def dream(model, basin_history):
            return model(random.choice(basin_history))
    """)
        == []
    )
