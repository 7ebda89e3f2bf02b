"""``python -m qig_guard.engine.docs``: regenerate docs/rules.md from the rule classes."""

from __future__ import annotations

import sys
from pathlib import Path

from qig_guard.engine.rule_catalog import RULES_DOC, rules_reference


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(RULES_DOC)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rules_reference(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
