"""A cheaper ``get_visitors`` for batched visitors.

libcst's default runs ``inspect.getmembers`` on every visitor instance, for
every file; with a dozen rules that was a third of a check's time. The names
of a class's visitor methods never change, so they are found once per class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache

import libcst as cst

VisitorFunction = Callable[[cst.CSTNode], None]


@cache
def visitor_names(cls: type) -> tuple[str, ...]:
    """Names of the non-stub ``visit_*``/``leave_*`` methods that ``cls`` defines."""
    names = []
    for name in dir(cls):
        if name.startswith(("visit_", "leave_")):
            member = getattr(cls, name)
            if callable(member) and not getattr(member, "_is_no_op", False):
                names.append(name)
    return tuple(names)


class FastBatchableVisitor(cst.BatchableCSTVisitor):
    """A BatchableCSTVisitor whose ``get_visitors`` is cached per class."""

    def get_visitors(self) -> Mapping[str, VisitorFunction]:
        return {name: getattr(self, name) for name in visitor_names(type(self))}
