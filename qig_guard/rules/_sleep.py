"""Where sleep/consolidation code is, shared by QIG007 and QIG008.

Sleep code is any function or method whose own name, an enclosing function's
name or an enclosing class's name matches the configured ``sleep-functions``
(by words: ``consolidate_toward_basin``, ``SleepProtocol.run``, a closure
inside ``dream``).
"""

from __future__ import annotations

import re
from functools import lru_cache

import libcst as cst

from qig_guard.config import Config
from qig_guard.names import matches_any, text_pattern
from qig_guard.resolve import ScopeTracker


def sleep_function(scopes: ScopeTracker, config: Config) -> cst.FunctionDef | None:
    """The innermost enclosing function when it is sleep code, else ``None``."""
    functions = scopes.functions
    if not functions:
        return None
    names = config.sleep_functions
    if any(matches_any(f.name.value, names) for f in functions) or any(
        matches_any(c.name.value, names) for c in scopes.classes
    ):
        return functions[-1]
    return None


@lru_cache(maxsize=8)
def _definition(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"\b(?:def|class)\s+\w*?{text_pattern(names)}")


def defines_sleep_code(source: str, config: Config) -> bool:
    """Cheap text test: does ``source`` define a function or class named like sleep code?

    Looser than :func:`sleep_function` (it matches inside words), never stricter.
    """
    return _definition(config.sleep_functions).search(source) is not None
