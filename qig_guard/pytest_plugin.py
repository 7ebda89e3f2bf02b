"""pytest plugin for qig-guard (registered through the pytest11 entry point).

Registration costs nothing: this module imports only pytest. The checker, the
basin validator and torch are imported by the hooks and fixtures that use them.

- ``--qig-basins`` (or the ini options ``qig_basin_paths`` / ``qig_basin_glob``):
  every basin JSON file becomes a test item that fails with the validator's findings.
- ``--qig-basins-verify`` (or the ini option ``qig_basins_verify``): each basin item
  also re-extracts its basin from the checkpoint its provenance names and fails when
  the two differ by more than ``qig_basin_verify_tolerance`` in Fisher distance.
- ``--qig-guard``: every Python file becomes a test item that fails with its
  qig-guard findings; results are cached by file content.
- Fixtures ``basin_factory``, ``basin_frozen_facts``, ``basin_reference_model``,
  ``basin_constellation`` and ``basin_checkpoint_pair``; the marker
  ``basin_invariants(ocean=..., frozen=...)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

pytest.register_assert_rewrite("qig_guard.testing")

if TYPE_CHECKING:
    from qig_guard.basin.settings import BasinSettings, FrozenFact
    from qig_guard.basin.verify import Verification
    from qig_guard.config import Config
    from qig_guard.engine.findings import Finding
    from qig_guard.runtime import Constellation, QIGKernelRecursive

INSTALL_HINT = "pip install 'qig-guard[runtime]'"
MARKER = "basin_invariants"
_MARKER_KEYS = ("ocean", "frozen")
DEFAULT_TOLERANCE = 1e-6  # qig_guard.basin.verify.DEFAULT_TOLERANCE, without importing it


def _tolerance(text: str) -> float:
    try:
        tolerance = float(text)
    except ValueError:
        tolerance = -1.0
    if not tolerance >= 0 or tolerance == float("inf"):
        raise pytest.UsageError(
            f"qig-guard: qig_basin_verify_tolerance: expected a finite number >= 0, got {text!r}"
        )
    return tolerance


def _factory_name(text: str) -> str | None:
    if not text:
        return None
    module, sep, name = text.partition(":")
    if not sep or not all(part.isidentifier() for part in (*module.split("."), *name.split("."))):
        raise pytest.UsageError(
            f"qig-guard: qig_basin_model_factory: expected module:callable "
            f"(e.g. mypackage.models:make_model), got {text!r}"
        )
    return text


class _Options:
    """What this run asked the plugin to do, and the project's configuration (lazy)."""

    def __init__(self, config: pytest.Config) -> None:
        self.rootpath = config.rootpath
        self.basin_paths: list[Path] = [p.resolve() for p in config.getini("qig_basin_paths")]
        missing = [path for path in self.basin_paths if not path.exists()]
        if missing:
            raise pytest.UsageError(
                f"qig-guard: qig_basin_paths: {missing[0]}: no such file or folder"
            )
        self.basin_globs: list[str] = config.getini("qig_basin_glob")
        self.verify = bool(
            config.getoption("qig_basins_verify") or config.getini("qig_basins_verify")
        )
        self.basins = bool(
            config.getoption("qig_basins") or self.verify or self.basin_paths or self.basin_globs
        )
        self.tolerance = _tolerance(config.getini("qig_basin_verify_tolerance"))
        self.model_factory = _factory_name(config.getini("qig_basin_model_factory"))
        self.guard = bool(config.getoption("qig_guard"))
        self._project: Config | None = None
        self._basin_settings: BasinSettings | None = None

    def make_model(self) -> Callable[[], Any] | None:
        """The ``qig_basin_model_factory`` callable, imported (``None`` when unset)."""
        if self.model_factory is None:
            return None
        module, _, name = self.model_factory.partition(":")
        target: Any = importlib.import_module(module)
        for attribute in name.split("."):
            target = getattr(target, attribute)
        if not callable(target):
            raise TypeError(f"qig_basin_model_factory {self.model_factory} is not callable")
        factory: Callable[[], Any] = target
        return factory

    @property
    def project(self) -> Config:
        """The ``[tool.qig-guard]`` configuration that applies to the rootdir."""
        if self._project is None:
            from qig_guard.config import ConfigError, discover

            try:
                self._project = discover(self.rootpath)
            except ConfigError as error:
                raise pytest.UsageError(f"qig-guard: {error}") from None
        return self._project

    @property
    def basin_settings(self) -> BasinSettings:
        """The project's ``[tool.qig-guard.basin]`` settings."""
        if self._basin_settings is None:
            from qig_guard.basin import basin_settings
            from qig_guard.config import ConfigError

            try:
                self._basin_settings = basin_settings(self.project)
            except ConfigError as error:
                raise pytest.UsageError(f"qig-guard: {error}") from None
        return self._basin_settings

    def is_basin_file(self, path: Path, explicit: bool) -> bool:
        """Whether ``path`` (a JSON file) is a basin file this run collects: not excluded,
        and named on the command line, or selected by the ini options if any are set,
        or else by the project's ``[tool.qig-guard.basin] files`` globs."""
        from qig_guard.engine.discovery import is_excluded, matches_glob, relative_posix

        if is_excluded(path, self.project):
            return False
        if explicit:
            return True
        if self.basin_paths or self.basin_globs:
            resolved = path.resolve()
            relative = relative_posix(path, self.rootpath)
            return (
                not self.basin_paths or any(resolved.is_relative_to(p) for p in self.basin_paths)
            ) and (not self.basin_globs or any(matches_glob(relative, g) for g in self.basin_globs))
        from qig_guard.basin import is_basin_file

        return is_basin_file(path, self.basin_settings)


_OPTIONS = pytest.StashKey[_Options]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qig-guard", "qig-guard basin-transfer checks")
    group.addoption(
        "--qig-basins",
        action="store_true",
        dest="qig_basins",
        help="collect basin JSON files as tests that fail with the validator's findings",
    )
    group.addoption(
        "--qig-basins-verify",
        action="store_true",
        dest="qig_basins_verify",
        help="also re-extract each basin file's basin from the checkpoint its provenance "
        "names and fail when they differ (implies --qig-basins; needs torch)",
    )
    group.addoption(
        "--qig-guard",
        action="store_true",
        dest="qig_guard",
        help="collect each Python file as a test that fails with its qig-guard findings",
    )
    parser.addini(
        "qig_basin_paths",
        type="paths",
        help="collect every JSON file under these paths as a basin file (turns basins on)",
    )
    parser.addini(
        "qig_basin_glob",
        type="args",
        help="collect JSON files matching these globs (relative to rootdir; a glob without "
        "'/' matches a file or folder name) as basin files (turns basins on)",
    )
    parser.addini(
        "qig_basins_verify",
        type="bool",
        default=False,
        help="verify basin files against their checkpoints, as --qig-basins-verify does",
    )
    parser.addini(
        "qig_basin_verify_tolerance",
        default=str(DEFAULT_TOLERANCE),
        help="largest Fisher distance between a basin file and its re-extracted basin "
        f"(default {DEFAULT_TOLERANCE:g})",
    )
    parser.addini(
        "qig_basin_model_factory",
        default="",
        help="module:callable returning a fresh model, for checkpoints without a stored "
        "target basin (the basin is then computed on that model)",
    )


def pytest_configure(config: pytest.Config) -> None:
    options = config.stash[_OPTIONS] = _Options(config)
    if options.basins:
        options.basin_settings  # noqa: B018 - a bad configuration is a usage error, now
    elif options.guard:
        options.project  # noqa: B018
    config.addinivalue_line(
        "markers",
        f"{MARKER}(ocean=..., frozen=...): fixture names of models that must not train "
        "during the test (qig-guard wraps the test in the runtime's frozen guard)",
    )
    config.addinivalue_line("markers", "qig_basin: a basin file validated by qig-guard")
    config.addinivalue_line("markers", "qig_guard: a Python file checked by qig-guard")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    options = parent.config.stash[_OPTIONS]
    if options.basins and file_path.suffix == ".json":
        if options.is_basin_file(file_path, parent.session.isinitpath(file_path)):
            return BasinFile.from_parent(parent, path=file_path)
    elif options.guard and file_path.suffix in (".py", ".pyi"):
        from qig_guard.engine.discovery import is_excluded

        if not is_excluded(file_path, options.project):
            return CheckedFile.from_parent(parent, path=file_path)
    return None


_OUTCOMES = ("passed", "failed", "skipped", "error")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """When basin files are on, one line counting the basin items by outcome."""
    options = terminalreporter.config.stash[_OPTIONS]
    if not options.basins:
        return
    counts = {
        outcome: len(
            {
                report.nodeid
                for report in terminalreporter.stats.get(outcome, [])
                if "qig_basin" in getattr(report, "keywords", {})
            }
        )
        for outcome in _OUTCOMES
    }
    total = sum(counts.values())
    what = "validated and checked against checkpoints" if options.verify else "validated"
    if total == 0:
        terminalreporter.write_line(f"qig-guard: no basin files collected ({what})")
        return
    parts = ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if count)
    files = "basin file" if total == 1 else "basin files"
    terminalreporter.write_line(f"qig-guard: {total} {files} {what}: {parts}")


class FindingsError(Exception):
    """A file has findings; carries them for :meth:`_FindingsItem.repr_failure`."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        super().__init__(f"{len(findings)} finding(s)")
        self.findings = findings


class _FindingsItem(pytest.Item):
    """An item whose failure is a list of findings, shown one per line."""

    kind = ""

    def findings(self) -> list[Finding]:
        raise NotImplementedError

    def runtest(self) -> None:
        findings = self.findings()
        if findings:
            raise FindingsError(findings)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, FindingsError):
            from qig_guard.engine.report import text_line

            return "\n".join(text_line(finding) for finding in excinfo.value.findings)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        from qig_guard.engine.discovery import relative_posix

        return self.path, 0, f"{self.kind} {relative_posix(self.path, self.config.rootpath)}"


class VerificationError(Exception):
    """A basin file that does not match its checkpoint; the message says how."""


class BasinItem(_FindingsItem):
    """Validates one basin file with the project's configuration, and with
    ``--qig-basins-verify`` checks it against its checkpoint."""

    kind = "basin file"

    def findings(self) -> list[Finding]:
        from qig_guard.basin import validate_basin_file
        from qig_guard.engine.discovery import relative_posix

        settings = self.config.stash[_OPTIONS].basin_settings
        display = relative_posix(self.path, self.config.rootpath)
        return [replace(f, path=display) for f in validate_basin_file(self.path, settings)]

    def runtest(self) -> None:
        super().runtest()
        options = self.config.stash[_OPTIONS]
        if options.verify:
            self._check(self._verify(options))

    def _verify(self, options: _Options) -> Verification:
        from qig_guard.basin.verify import verify_against_checkpoint

        try:
            factory = options.make_model()
        except (ImportError, AttributeError, TypeError) as error:
            raise VerificationError(f"qig_basin_model_factory: {error}") from None
        return verify_against_checkpoint(
            self.path,
            roots=[self.config.rootpath],
            model_factory=factory,
            tolerance=options.tolerance,
        )

    def _check(self, verification: Verification) -> None:
        from qig_guard.basin.verify import Outcome

        if verification.distance is not None:
            self.user_properties.append(("fisher_distance", verification.distance))
        if verification.outcome is Outcome.SKIPPED:  # reported at the basin file, not here
            raise pytest.skip.Exception(verification.message, _use_item_location=True)
        if verification.outcome is not Outcome.MATCH:
            raise VerificationError(verification.message)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, VerificationError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class BasinFile(pytest.File):
    """A basin JSON file: one :class:`BasinItem`."""

    def collect(self) -> Iterator[BasinItem]:
        item = BasinItem.from_parent(self, name="basin")
        item.add_marker("qig_basin")
        yield item


class CheckItem(_FindingsItem):
    """Runs the static checker over one Python file (content-cached)."""

    kind = "qig-guard"

    def findings(self) -> list[Finding]:
        from qig_guard.engine.runner import run

        result = run([self.path], self.config.stash[_OPTIONS].project, jobs=1, use_cache=True)
        return result.findings


class CheckedFile(pytest.File):
    """A Python file: one :class:`CheckItem`."""

    def collect(self) -> Iterator[CheckItem]:
        item = CheckItem.from_parent(self, name="qig-guard")
        item.add_marker("qig_guard")
        yield item


# Fixtures -------------------------------------------------------------------------------------


def _require_torch(what: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError as error:
        pytest.skip(f"{what} needs torch ({INSTALL_HINT}): {error}")


@pytest.fixture
def basin_frozen_facts(request: pytest.FixtureRequest) -> dict[str, FrozenFact]:
    """The project's frozen facts (``[tool.qig-guard.frozen-facts]``), by constant name."""
    settings = request.config.stash[_OPTIONS].basin_settings
    return {fact.name: fact for fact in settings.frozen_facts.facts}


def _standard_basin(dim: int, seed: int) -> list[float]:
    import random

    generator = random.Random(seed)
    return [round(generator.gauss(0.0, 0.5), 6) for _ in range(dim)]


@pytest.fixture
def basin_factory(
    request: pytest.FixtureRequest, tmp_path: Path, basin_frozen_facts: dict[str, FrozenFact]
) -> Callable[..., Path]:
    """``make(name="basin.json", *, dim=None, seed=0, **fields) -> Path``: a valid standard
    basin file under ``tmp_path``, written by ``qig_guard.basin.save_basin``, of the
    project's dimension (``[tool.qig-guard.basin] dim``, 64 by default) unless ``dim`` says.

    The vector is seeded; ``physics_constants`` default to the project's frozen facts;
    ``fields`` override any ``save_basin`` argument (``basin``, ``source_model``, ...).
    """
    from qig_guard.basin import save_basin

    project_dim = request.config.stash[_OPTIONS].basin_settings.dim

    def make(
        name: str = "basin.json", *, dim: int | None = None, seed: int = 0, **fields: Any
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        size = project_dim if dim is None else dim
        arguments: dict[str, Any] = {
            "basin": _standard_basin(size, seed),
            "expected_dim": size,
            "source_model": "Gary-A",
            "extracted_from": "checkpoints/gary-a.pt",
            "physics_constants": {key: fact.value for key, fact in basin_frozen_facts.items()},
        }
        arguments.update(fields)
        return save_basin(path, **arguments)

    return make


def _reference_model(target: Path, seed: int) -> QIGKernelRecursive:
    """A small seeded model whose basin has the dimension of the ``target`` file."""
    import torch

    from qig_guard.basin import load_basin
    from qig_guard.runtime import QIGKernelRecursive

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return QIGKernelRecursive(
            d_model=32,
            vocab_size=64,
            n_heads=2,
            min_recursion_depth=1,
            min_Phi=0.7,
            target_basin=target,
            max_recursion_depth=2,
            max_seq_len=16,
            dropout=0.0,
            n_probes=4,
            probe_len=8,
            basin_dim=load_basin(target).dim,
        )


@pytest.fixture
def basin_reference_model(basin_factory: Callable[..., Path]) -> QIGKernelRecursive:
    """A small seeded CPU ``QIGKernelRecursive`` whose target is a ``basin_factory`` file."""
    _require_torch("basin_reference_model")
    return _reference_model(basin_factory("reference-target.basin.json"), seed=0)


@pytest.fixture
def basin_constellation(
    request: pytest.FixtureRequest, basin_factory: Callable[..., Path]
) -> Constellation:
    """A runtime ``Constellation``: an active model, two observers and a frozen Ocean
    (no parameter requires grad), each seeded differently, sharing one target basin."""
    _require_torch("basin_constellation")
    from qig_guard.runtime import Constellation

    target = basin_factory("constellation-target.basin.json")
    active, first, second, ocean = (_reference_model(target, seed) for seed in range(4))
    ocean.requires_grad_(False)
    ocean.eval()
    weights = request.config.stash[_OPTIONS].project.sync_weight_range
    return Constellation(active, [first, second], ocean, sync_weight_range=weights)


class BasinCheckpointPair(NamedTuple):
    """A basin file and the checkpoint it was extracted from."""

    basin: Path
    checkpoint: Path


@pytest.fixture
def basin_checkpoint_pair(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    basin_factory: Callable[..., Path],
    basin_frozen_facts: dict[str, FrozenFact],
) -> BasinCheckpointPair:
    """``(basin, checkpoint)``: a small seeded model's weights saved with ``torch.save``
    as ``gary-a.pt`` and the basin file extracted from them by the runtime
    (``gary-a.basin.json``, provenance naming the checkpoint and its SHA-256), under
    ``tmp_path``; the basin has the project's dimension."""
    _require_torch("basin_checkpoint_pair")
    import torch

    from qig_guard.runtime import extract_basin_from_checkpoint

    dim = request.config.stash[_OPTIONS].basin_settings.dim
    target = basin_factory("gary-a-target.basin.json", dim=dim, seed=1)
    model = _reference_model(target, seed=0)
    checkpoint = tmp_path / "gary-a.pt"
    torch.save(model.state_dict(), checkpoint)
    basin = extract_basin_from_checkpoint(
        checkpoint,
        tmp_path / "gary-a.basin.json",
        source_model="Gary-A",
        physics_constants={name: fact.value for name, fact in basin_frozen_facts.items()},
        expected_dim=dim,
    )
    return BasinCheckpointPair(basin, checkpoint)


# The basin_invariants marker ------------------------------------------------------------------


class MarkerError(Exception):
    """A ``basin_invariants`` marker that cannot be honoured; fails the test that has it."""


def _marker_fixtures(marker: pytest.Mark) -> list[str]:
    if marker.args:
        raise MarkerError(
            f"{MARKER} takes keyword arguments only: {MARKER}(ocean='ocean', frozen=[...])"
        )
    unknown = sorted(set(marker.kwargs) - set(_MARKER_KEYS))
    if unknown:
        raise MarkerError(
            f"{MARKER}: unknown argument {unknown[0]!r} (known: {', '.join(_MARKER_KEYS)}); "
            "observers learn vicariously, so name a model in frozen= only if it must not train"
        )
    names: list[str] = []
    for key in _MARKER_KEYS:
        value = marker.kwargs.get(key, ())
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not all(
            isinstance(name, str) and name for name in values
        ):
            raise MarkerError(f"{MARKER}({key}=...) takes fixture names, got {value!r}")
        names.extend(values)
    return names


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Make the fixtures that a ``basin_invariants`` marker names part of the test."""
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is None or not isinstance(item, pytest.Function):
            continue
        try:
            names = _marker_fixtures(marker)
        except MarkerError:
            continue  # reported when the test runs
        item.fixturenames.extend(name for name in names if name not in item.fixturenames)


def _modules(name: str, value: Any) -> list[Any]:
    from torch import nn

    candidates = [value] if isinstance(value, nn.Module) else value
    if not isinstance(candidates, (list, tuple)) or not all(
        isinstance(c, nn.Module) for c in candidates
    ):
        raise MarkerError(f"{MARKER}: fixture {name!r} must give a torch module or a list of them")
    return list(candidates)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    marker = item.get_closest_marker(MARKER)
    if marker is None or not isinstance(item, pytest.Function):
        return (yield)
    try:
        names = _marker_fixtures(marker)
        _require_torch(MARKER)
        models = [module for name in names for module in _modules(name, item.funcargs[name])]
    except MarkerError as error:
        pytest.fail(str(error), pytrace=False)
    import torch

    from qig_guard.runtime import frozen

    before = {
        (index, name): param.detach().clone()
        for index, model in enumerate(models)
        for name, param in model.named_parameters()
    }
    with frozen(*models, check_on_exit=False):  # the values are compared below, all reported
        outcome = yield
    changed = [
        name
        for index, model in enumerate(models)
        for name, param in model.named_parameters()
        if (index, name) not in before or not torch.equal(before[(index, name)], param.detach())
    ]
    if changed:
        pytest.fail(
            f"{MARKER}: frozen model parameters changed during the test: {', '.join(changed)}",
            pytrace=False,
        )
    return outcome
