"""The "Use with pytest" README section's example runs exactly as shown."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

SECTION = Path(__file__).parents[2] / "README.md"


def section() -> str:
    """The README's "Use with pytest" section."""
    text = SECTION.read_text()
    start = text.index("## Use with pytest")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), flags=re.DOTALL)


@pytest.mark.skipif(not SECTION.is_file(), reason="the README section is not in this checkout")
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the example uses torch")
def test_the_example_runs_as_shown(pytester: pytest.Pytester) -> None:
    (example,) = blocks("python")
    (console,) = blocks("console")
    command, *shown = console.splitlines()
    name = re.search(r"Save this as `([\w.]+)`", section())
    assert name is not None and command.startswith("$ pytest ")
    pytester.path.joinpath(name.group(1)).write_text(example)
    result = pytester.runpytest_subprocess(*shlex.split(command)[2:])
    # Timings vary, and so may environment warnings (torch warns when numpy is missing).
    expected = [re.sub(r"^(\d+ passed) in [0-9.]+s$", r"\1* in *s", line) for line in shown]
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in expected])
    assert result.ret == pytest.ExitCode.OK
