"""``python -m qig_guard.engine.docs``: regenerate docs/rules.md and the README's rule table.

Both are generated from the rule classes; ``tests/test_docs.py`` fails when either
is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qig_guard.engine.rule_catalog import README, RULES_DOC, readme_with_table, rules_reference


def main() -> int:
    reference = Path(RULES_DOC)
    reference.parent.mkdir(parents=True, exist_ok=True)
    reference.write_text(rules_reference(), encoding="utf-8")
    readme = Path(README)
    readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {reference} and the rule table of {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
