"""pytest plugin for qig-guard (registered through the pytest11 entry point).

Registration costs nothing: this module imports only pytest. The checker, the
basin validator and torch are imported by the hooks and fixtures that use them.

- ``--qig-basins`` (or the ini options ``qig_basin_paths`` / ``qig_basin_glob``):
  every basin JSON file becomes a test item that fails with the validator's findings.
- ``--qig-guard``: every Python file becomes a test item that fails with its
  qig-guard findings; results are cached by file content.
- Fixtures ``basin_factory``, ``basin_frozen_facts``, ``basin_reference_model`` and
  ``basin_constellation``; the marker ``basin_invariants(ocean=..., frozen=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.register_assert_rewrite("qig_guard.testing")

if TYPE_CHECKING:
    from qig_guard.basin.settings import BasinSettings, FrozenFact
    from qig_guard.config import Config
    from qig_guard.findings import Finding
    from qig_guard.runtime import Constellation, QIGKernelRecursive

INSTALL_HINT = "pip install 'qig-guard[runtime]'"
MARKER = "basin_invariants"
_MARKER_KEYS = ("ocean", "frozen")


class _Options:
    """What this run asked the plugin to do, and the project's configuration (lazy)."""

    def __init__(self, config: pytest.Config) -> None:
        self.rootpath = config.rootpath
        self.basin_paths: list[Path] = [p.resolve() for p in config.getini("qig_basin_paths")]
        self.basin_globs: list[str] = config.getini("qig_basin_glob")
        self.basins = bool(config.getoption("qig_basins") or self.basin_paths or self.basin_globs)
        self.guard = bool(config.getoption("qig_guard"))
        self._project: Config | None = None
        self._basin_settings: BasinSettings | None = None

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
        from qig_guard.discovery import is_excluded, matches_glob, relative_posix

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
        from qig_guard.discovery import is_excluded

        if not is_excluded(file_path, options.project):
            return CheckedFile.from_parent(parent, path=file_path)
    return None


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
            from qig_guard.report import text_line

            return "\n".join(text_line(finding) for finding in excinfo.value.findings)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        from qig_guard.discovery import relative_posix

        return self.path, None, f"{self.kind} {relative_posix(self.path, self.config.rootpath)}"


class BasinItem(_FindingsItem):
    """Validates one basin file with the project's configuration."""

    kind = "basin file"

    def findings(self) -> list[Finding]:
        from qig_guard.basin import validate_basin_file
        from qig_guard.discovery import relative_posix

        settings = self.config.stash[_OPTIONS].basin_settings
        display = relative_posix(self.path, self.config.rootpath)
        return [replace(f, path=display) for f in validate_basin_file(self.path, settings)]


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
        from qig_guard.runner import run

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
def basin_factory(tmp_path: Path, basin_frozen_facts: dict[str, FrozenFact]) -> Callable[..., Path]:
    """``make(name="basin.json", *, dim=64, seed=0, **fields) -> Path``: a valid standard
    basin file under ``tmp_path``, written by ``qig_guard.basin.save_basin``.

    The vector is seeded; ``physics_constants`` default to the project's frozen facts;
    ``fields`` override any ``save_basin`` argument (``basin``, ``source_model``, ...).
    """
    from qig_guard.basin import save_basin

    def make(name: str = "basin.json", *, dim: int = 64, seed: int = 0, **fields: Any) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        arguments: dict[str, Any] = {
            "basin": _standard_basin(dim, seed),
            "source_model": "Gary-A",
            "extracted_from": "checkpoints/gary-a.pt",
            "physics_constants": {key: fact.value for key, fact in basin_frozen_facts.items()},
        }
        arguments.update(fields)
        return save_basin(path, **arguments)

    return make


def _reference_model(target: Path, seed: int) -> QIGKernelRecursive:
    import torch

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
