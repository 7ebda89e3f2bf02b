"""Shared helpers for the engine tests."""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst
import pytest

from qig_guard.rules.base import Invalid, Rule
from qig_guard.rules.gates import Identifiers


class TorchSaveRule(Rule):
    """
    ## What it does
    Test rule: flags `torch.save(...)` calls, resolved through imports.

    ## Why is this bad
    Only for testing the engine.

    ## Example
    ```python
    torch.save(basin, path)
    ```

    ## Use instead
    Nothing.

    ## Fix safety
    Replaces the call's function with `save_basin`, which is safe for tests.
    """

    code = "QIG900"
    name = "test-torch-save"
    summary = "test rule"
    VALID = ("x = 1\n",)
    INVALID = (Invalid("torch.save(basin, path)\n", "save_basin(basin, path)\n"),)

    gate = Identifiers("save")

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) == "torch.save":
            self.report(
                node.func,
                "torch.save of a basin",
                replacement=cst.Name("save_basin"),
                fix_description="Use save_basin",
            )


class CrashingRule(Rule):
    """Test rule that raises on every call."""

    code = "QIG901"
    name = "test-crash"
    summary = "test rule"

    def visit_Call(self, node: cst.Call) -> None:
        raise RuntimeError("boom")


@pytest.fixture
def torch_save_rule() -> type[Rule]:
    return TorchSaveRule


@pytest.fixture
def crashing_rule() -> type[Rule]:
    return CrashingRule


@pytest.fixture
def write_tree(tmp_path: pytest.TempPathFactory) -> Callable[[dict[str, str | bytes]], None]:
    """Write ``{relative path: text or bytes}`` under ``tmp_path``."""

    def write(files: dict[str, str | bytes]) -> None:
        for name, content in files.items():
            path = tmp_path / name  # type: ignore[operator]
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    return write
