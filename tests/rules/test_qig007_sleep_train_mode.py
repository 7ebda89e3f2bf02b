"""QIG007 sleep-train-mode: training mode and unguarded gradient steps in sleep code."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
from rule_cases import check_source, gate_passes, rule_findings

from qig_guard.config import Config
from qig_guard.rules.qig007_sleep_train_mode import SleepTrainMode


def lines(source: str, config: Config | None = None) -> list[int]:
    return [finding.line for finding in rule_findings(SleepTrainMode, source, config)]


FLAGGED = {
    "train-then-loop": (
        """
        def consolidate_toward_basin(model, target_basin, optimizer, steps=50):
            model.train()  # line 3
            for _ in range(steps):
                loss = fisher_distance(model.basin_matcher.current_basin, target_basin)
                loss.backward()
                optimizer.step()
        """,
        [3],
    ),
    "train-true-inside-loop-after-step": (
        """
        class SleepProtocol:
            def run(self, steps):
                for step in range(steps):
                    self.basin_loss().backward()
                    self.optimizer.step()
                    self.model.train(True)  # line 7: the next iteration trains
        """,
        [7],
    ),
    "train-mode-keyword-then-forward": (
        """
        def dream(model, basin):
            model.train(mode=True)  # line 3
            out = model(basin)
            return out
        """,
        [3],
    ),
    "train-then-forward-method": (
        """
        def sleep_phase(self, model, basin):
            model.train()  # line 3
            return self._align(model.forward(basin))
        """,
        [3],
    ),
    "no-eval-before-steps": (
        """
        import torch

        def consolidation_loop(model, target_basin, steps=50):
            opt = torch.optim.SGD(model.parameters(), lr=1e-4)
            for _ in range(steps):
                loss = fisher_distance(model.basin_matcher.current_basin, target_basin)
                loss.backward()  # line 8
                opt.step()
                opt.zero_grad()
        """,
        [8],
    ),
    "eval-after-the-steps-is-too-late": (
        """
        class DreamCycle:
            def step(self, target_basin):
                self.optimizer.zero_grad()
                self.scaler.scale(self.loss(target_basin)).backward()  # line 5
                self.scaler.step(self.optimizer)
        """,
        [5],
    ),
    "autograd-backward-alias": (
        """
        from torch.autograd import backward as bw

        def consolidate(model, basin):
            bw(fisher_distance(model.current_basin, basin))  # line 5
        """,
        [5],
    ),
    "async-method-of-sleep-class": (
        """
        class ConsolidationEngine:
            async def tick(self):
                self.net.train()  # line 4
                self.loss().backward()
        """,
        [4],
    ),
    "closure-inside-sleep-function": (
        """
        def sleep(model, optimizer, basin):
            def closure():
                optimizer.zero_grad()
                loss = fisher_distance(model.current_basin, basin)
                loss.backward()  # line 6
                return loss
            optimizer.step(closure)
        """,
        [6],
    ),
}


FLAGGED.update(
    {
        "train-then-a-helper-that-steps": (
            """
            class Sleeper:
                def _replay_step(self, batch):
                    self.basin_loss(batch).backward()
                    self.optimizer.step()

                def deep_sleep(self, batches):
                    self.model.train()  # line 8
                    for batch in batches:
                        self._replay_step(batch)
            """,
            [8],
        ),
        "train-then-a-helper-of-a-helper": (
            """
            def _update(model, opt):
                model.loss().backward()
                opt.step()

            def _run(model, opt):
                _update(model, opt)

            def dream(model, opt):
                model.train()  # line 10
                _run(model, opt)
            """,
            [10],
        ),
        "training-flag-set-directly": (
            """
            def consolidate(model, basin, optimizer):
                model.training = True  # line 3
                fisher_distance(model.current_basin, basin).backward()
                optimizer.step()
            """,
            [3],
        ),
    }
)


@pytest.mark.parametrize(("source", "expected"), FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(source: str, expected: list[int]) -> None:
    assert lines(source) == expected


NOT_FLAGGED = {
    "spec-template": """
        def consolidate_toward_basin(model, target_basin, steps=50, lr=0.0001):
            model.eval()  # No dropout during sleep
            current_basin = model.basin_matcher.current_basin
            for step in range(steps):
                loss = fisher_distance(model.basin_matcher.current_basin, target_basin)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            return {"steps": steps}
        """,
    "restore-in-finally": """
        def sleep_cycle(self, basin):
            was_training = self.model.training
            self.model.eval()
            try:
                for _ in range(10):
                    self.loss(basin).backward()
                    self.optimizer.step()
            finally:
                self.model.train()
        """,
    "restore-as-last-statement": """
        def consolidate(model, basin, optimizer):
            model.eval()
            for _ in range(50):
                fisher_distance(model.current_basin, basin).backward()
                optimizer.step()
            model.train()
            return model
        """,
    "restore-caller-mode": """
        def dream(model, basin, optimizer):
            was_training = model.training
            model.train(False)
            fisher_distance(model.current_basin, basin).backward()
            optimizer.step()
            model.train(was_training)
            model.train(mode=was_training)
        """,
    "restore-on-error": """
        def consolidate(model, basin, optimizer):
            model.eval()
            try:
                fisher_distance(model.current_basin, basin).backward()
                optimizer.step()
            except RuntimeError:
                model.train()
                raise
        """,
    "restore-then-save-and-log": """
        def consolidate(model, basin, optimizer, path):
            model.eval()
            fisher_distance(model.current_basin, basin).backward()
            optimizer.step()
            model.train()
            save_checkpoint(model, path)
            logger.info("consolidated %s", model)
        """,
    "train-then-eval-same-model": """
        def sleep(model, basin, optimizer):
            model.train()
            model.eval()
            fisher_distance(model.current_basin, basin).backward()
            optimizer.step()
        """,
    "ordinary-training-code": """
        def train_epoch(model, loader, optimizer):
            model.train()
            for batch in loader:
                model(batch).loss.backward()
                optimizer.step()
        """,
    "helper-called-after-eval": """
        def _consolidation_step(model, basin, optimizer):
            fisher_distance(model.current_basin, basin).backward()
            optimizer.step()

        def consolidate(model, basin, optimizer, steps=50):
            model.eval()
            for _ in range(steps):
                _consolidation_step(model, basin, optimizer)
        """,
    "method-of-class-that-enters-eval": """
        class SleepProtocol:
            def enter(self):
                self.model.eval()

            def step(self, basin):
                self.loss(basin).backward()
                self.optimizer.step()
        """,
    "scheduler-and-env-steps-are-not-gradient-steps": """
        def sleep_schedule(scheduler, env, action):
            scheduler.step()
            env.step(action)
            lr_scheduler.step()
        """,
    "trainer-train-with-arguments": """
        def consolidate_runs(trainer):
            trainer.train(resume_from_checkpoint=True)
        """,
    "time-sleep-is-not-sleep-code": """
        import time

        def fit(model, optimizer):
            time.sleep(1)
            model.train()
            model(x).backward()
            optimizer.step()
        """,
    "eval-before-nested-closure": """
        def sleep(model, optimizer, basin):
            model.eval()
            def closure():
                loss = fisher_distance(model.current_basin, basin)
                loss.backward()
                return loss
            optimizer.step(closure)
        """,
    "word-matching-not-substring": """
        def asleepish(model, optimizer):
            model.train()
            model(x).backward()
            optimizer.step()
        """,
}


NOT_FLAGGED.update(
    {
        "restore-then-resume-training-in-a-helper": """
            class Sleeper:
                def _train_epoch(self):
                    self.loss().backward()
                    self.optimizer.step()

                def sleep_cycle(self, basin):
                    self.model.eval()
                    self.consolidate_once(basin)
                    self.model.train()
                    self._train_epoch()
            """,
        "train-then-a-helper-that-only-measures": """
            def _measure(model):
                return model.basin_matcher.current_basin.norm()

            def dream(model):
                model.train()
                return _measure(model)
            """,
        "test-of-sleep-code-in-train-mode": """
            def test_sleep_consolidation(model, optimizer):
                model.train()
                model(x).loss.backward()
                optimizer.step()
            """,
        "training-flag-cleared": """
            def consolidate(model, basin, optimizer):
                model.training = False
                fisher_distance(model.current_basin, basin).backward()
                optimizer.step()
            """,
    }
)


@pytest.mark.parametrize("source", NOT_FLAGGED.values(), ids=NOT_FLAGGED.keys())
def test_not_flagged(source: str) -> None:
    assert lines(source) == []


def test_one_step_finding_per_function() -> None:
    source = """
        def consolidate(model, basin, optimizer):
            for _ in range(3):
                fisher_distance(model.current_basin, basin).backward()
                optimizer.step()
                fisher_distance(model.current_basin, basin).backward()
        """
    assert lines(source) == [4]


def test_sleep_names_come_from_config() -> None:
    source = """
        def rest_phase(model, optimizer):
            model.train()
            model(x).backward()
            optimizer.step()
        """
    assert lines(source) == []
    assert lines(source, replace(Config(), sleep_functions=("rest*",))) == [3]


def test_message_names_the_call_and_function() -> None:
    source = "def dream(m, o):\n    m.train()\n    m(x).backward()\n"
    result = check_source("d.py", source.encode(), Config(), [SleepTrainMode])
    (finding,) = result.findings
    assert "`m.train()`" in finding.message and "`dream`" in finding.message
    assert finding.fix is None


def test_trigger_skips_files_without_sleep_code_or_training_api() -> None:
    assert not rule_findings(SleepTrainMode, "def train(m):\n    m.train()\n", Config())
    assert not rule_findings(SleepTrainMode, "def sleep(m):\n    m.eval()\n", Config())
    assert gate_passes(SleepTrainMode, "def sleep(m):\n    m.train()\n", Config())
    calls_time_sleep = "import time\ndef fit(m):\n    time.sleep(1)\n    m.train()\n"
    assert not rule_findings(SleepTrainMode, calls_time_sleep, Config())
    assert not gate_passes(SleepTrainMode, calls_time_sleep, Config())  # not sleep code
    assert gate_passes(
        SleepTrainMode, "class LightSleep:\n    def f(self):\n        x.backward()\n", Config()
    )


@pytest.mark.parametrize(("source", "expected"), FLAGGED.values(), ids=FLAGGED.keys())
def test_trigger_passes_every_flagged_case(source: str, expected: list[int]) -> None:
    assert gate_passes(SleepTrainMode, textwrap.dedent(source), Config())


TRICKY_FLAGGED = {
    "eval-only-in-docstring-and-comment": (
        '''
        def consolidate(model, basin, optimizer):
            """Callers must not rely on model.eval() here."""
            # model.eval()
            basin_loss(model, basin).backward()  # line 5
            optimizer.step()
        ''',
        [5],
    ),
    "eval-in-a-closed-helper": (
        """
        def sleep_cycle(model, optimizer):
            def measure():
                model.eval()
                return 0
            basin_loss(model).backward()  # line 6
            optimizer.step()
        """,
        [6],
    ),
    "dedented-string-and-multiline-header": (
        '''
        def dream(
            model,
            optimizer,
        ):
            note = """
        no eval() here
        """
            basin_loss(model).backward()  # line 9
        ''',
        [9],
    ),
    "decorated-method-of-sleep-class": (
        """
        class NightlySleep:
            @staticmethod
            def run(model, opt):
                model.train()  # line 5
                basin_loss(model).backward()
        """,
        [5],
    ),
}


@pytest.mark.parametrize(("source", "expected"), TRICKY_FLAGGED.values(), ids=TRICKY_FLAGGED.keys())
def test_trigger_reads_structure_not_just_words(source: str, expected: list[int]) -> None:
    assert lines(source) == expected
    assert gate_passes(SleepTrainMode, textwrap.dedent(source), Config())


LOOK_ALIKES = {
    "consolidation-in-eval-mode-restoring-the-mode": """
        def consolidate_gary(model, target_basin, steps=50):
            was_training = model.training
            model.eval()
            optimizer = torch.optim.SGD(model.basin_matcher.parameters(), lr=1e-4)
            for _ in range(steps):
                fisher_distance(model.basin_matcher.current_basin, target_basin).backward()
                optimizer.step()
            model.train(was_training)
        """,
    "training-loop-beside-sleep-code": """
        def train_gary(model, loader, optimizer):
            model.train()
            for batch in loader:
                model(batch).loss.backward()
                optimizer.step()

        def sleep_report(model):
            return {"basin": model.basin_matcher.current_basin.tolist()}
        """,
    "ocean-observes-in-sleep-named-training": """
        def train_sleep_12(model, ocean, loader, optimizer):
            ocean.eval()
            for batch in loader:
                model(batch).loss.backward()
                optimizer.step()
        """,
}


@pytest.mark.parametrize("source", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_trigger_skips_clean_look_alikes(source: str) -> None:
    """Speed: research files define sleep code beside training loops; only a
    training-mode switch or an unguarded step inside sleep code needs a parse."""
    assert lines(source) == []
    assert not rule_findings(SleepTrainMode, textwrap.dedent(source), Config())


EWC = {
    "ewc-class": """
        class EWC:
            def consolidate(self, model, dataloader, optimizer):
                model.train()
                for x, y in dataloader:
                    model(x).loss.backward()
                    optimizer.step()
        """,
    "consolidator-estimating-fisher": """
        class Consolidator:
            def consolidate(self, model, dataloader):
                model.train()
                fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
                for x, y in dataloader:
                    model.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    for n, p in model.named_parameters():
                        fisher[n] += p.grad.detach() ** 2 / len(dataloader)
                self.fisher = fisher
        """,
    "consolidation-penalty": """
        def consolidation_penalty(model, fisher, anchors, optimizer):
            model.train()
            pairs = zip(fisher, model.parameters(), anchors)
            loss = sum((f * (p - a) ** 2).sum() for f, p, a in pairs)
            loss.backward()
            optimizer.step()
        """,
}


@pytest.mark.parametrize("source", EWC.values(), ids=EWC.keys())
def test_elastic_weight_consolidation_is_not_sleep_code(source: str) -> None:
    assert lines(source) == []


def test_sleep_code_with_fisher_distance_is_still_sleep_code() -> None:
    source = """
        def consolidate(model, target_basin, optimizer):
            model.train()  # line 3
            fisher_distance(model.basin_matcher.current_basin, target_basin).backward()
            optimizer.step()
        """
    assert lines(source) == [3]


# -- optimizer words are one fact shared with QIG001 and QIG003 (issue 16) -------------


def test_a_step_of_any_optimizer_word_is_a_gradient_step() -> None:
    source = """
        def sleep_cycle(model, grads):
            for parameter, grad in zip(model.parameters(), grads):
                parameter.grad = grad
            model.adamax.step()
    """
    assert lines(source) == [5]
    assert lines(source.replace("adamax", "scheduler")) == []
