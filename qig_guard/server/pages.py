"""Rule pages for the editor: each code's documentation link and hover text."""

from __future__ import annotations

import re
from functools import lru_cache

from qig_guard.basin.codes import BASIN_RULES
from qig_guard.engine.report import INFORMATION_URI, RuleInfo
from qig_guard.engine.rule_catalog import check_rule_info

BASIN_DOCS = "README.md#basin-files"
HOVER_SECTIONS = ("What it does", "Why is this bad", "Use instead")
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)


@lru_cache(maxsize=1)
def _rules() -> dict[str, RuleInfo]:
    return {**check_rule_info(), **BASIN_RULES}


def rule_url(code: str) -> str | None:
    """The web address of ``code``'s page in the rules reference (or the basin docs)."""
    info = _rules().get(code)
    if info is None:
        return None
    return f"{INFORMATION_URI}/blob/main/{info.docs_path or BASIN_DOCS}"


def sections(markdown: str) -> dict[str, str]:
    """A rule docstring's ``## Heading`` sections, by heading."""
    parts = _HEADING.split(markdown)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return {title.strip(): body.strip() for title, body in pairs}


def hover_text(code: str) -> str | None:
    """Markdown for a hover over ``code``'s finding: what the rule does, why, and
    what to use instead, with a link to the full page."""
    info = _rules().get(code)
    if info is None:
        return None
    found = sections(info.documentation)
    if found:
        body = "\n\n".join(
            f"**{title}**\n\n{found[title]}" for title in HOVER_SECTIONS if title in found
        )
    else:  # basin checks document themselves in one paragraph
        body = info.documentation
    return f"**{info.code} {info.name}**: {info.summary}\n\n{body}\n\n[Rule page]({rule_url(code)})"
