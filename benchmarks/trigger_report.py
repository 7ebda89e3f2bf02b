"""How selective each rule's text trigger is, and proof that it loses nothing.

    python benchmarks/trigger_report.py [PATH ...]   # default: generated corpus + torch source

For each rule: the share of files whose text passes ``could_match`` (lower is
faster), and whether running the rule on every file, trigger ignored, finds
anything the triggered run missed (it must not: a trigger may only skip files
the rule cannot flag).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus as corpus_builder  # noqa: E402

from qig_guard.config import Config  # noqa: E402
from qig_guard.engine.checker import check_text  # noqa: E402
from qig_guard.engine.findings import FILE_ERROR  # noqa: E402
from qig_guard.engine.source import SourceError, decode  # noqa: E402
from qig_guard.rules import all_codes, load_rule  # noqa: E402


def sources(paths: list[Path]) -> list[tuple[str, str]]:
    found = []
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            try:
                text, _ = decode(path.read_bytes(), 2_000_000)
            except (OSError, SourceError):
                continue
            found.append((str(path), text))
    return found


def main() -> int:
    paths = [Path(arg) for arg in sys.argv[1:]]
    if not paths:
        paths = [corpus_builder.build(HERE / ".corpus" / "research", target_lines=60_000)]
        spec = importlib.util.find_spec("torch")
        if spec is not None and spec.origin is not None:
            paths.append(Path(spec.origin).parent)
    files = sources(paths)
    config = Config()
    print(f"{len(files)} files from {', '.join(map(str, paths))}")
    lost_any = False
    for code in all_codes():
        if code == FILE_ERROR:
            continue
        rule = load_rule(code)
        passed = [(name, text) for name, text in files if rule.could_match(text, config)]
        missed = []
        for name, text in files:
            if rule.could_match(text, config):
                continue
            findings = [
                f for f in check_text(name, text, config, [rule]).findings if f.code == code
            ]
            missed.extend(findings)
        lost_any |= bool(missed)
        share = len(passed) / max(1, len(files))
        print(
            f"{code}  trigger passes {len(passed):5d}/{len(files)} files ({share:6.1%})  "
            f"findings missed by the trigger: {len(missed)}"
        )
        for finding in missed[:5]:
            print(f"    MISSED {finding.path}:{finding.line}:{finding.column} {finding.message}")
    return 1 if lost_any else 0


if __name__ == "__main__":
    sys.exit(main())
