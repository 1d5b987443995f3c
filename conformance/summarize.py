"""Summarize irctest junit XML files: pass/fail/skip per module and model,
the failures, and every skip with its reason.

    python3 conformance/summarize.py OUT/prethread.xml OUT/prefork.xml ...

Each file's model is its name without `.xml`. Prints Markdown. Standard
library only (it runs outside irctest's venv too).
"""

from __future__ import annotations

import collections
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Tuple

PREFIX = "irctest.server_tests."


def outcome(tc: ET.Element) -> Tuple[str, str]:
    for child in tc:
        if child.tag in ("failure", "error"):
            return "fail", (child.get("message") or "").strip()
        if child.tag == "skipped":
            return "skip", (child.get("message") or "").strip()
    return "pass", ""


def load(path: Path) -> List[Tuple[str, str, str, str]]:
    """(module, test, outcome, message) for each test case."""
    rows = []
    for tc in ET.parse(path).iter("testcase"):
        classname = tc.get("classname") or ""
        module, _, cls = classname.rpartition(".")
        module = module[len(PREFIX):] if module.startswith(PREFIX) else module
        kind, message = outcome(tc)
        rows.append((module, f"{cls}::{tc.get('name')}", kind, message))
    return rows


def short(message: str, width: int = 160) -> str:
    message = re.sub(r"\s+", " ", message)
    return message if len(message) <= width else message[: width - 1] + "…"


def main(paths: List[str]) -> None:
    runs: Dict[str, List[Tuple[str, str, str, str]]] = {
        Path(p).stem: load(Path(p)) for p in paths
    }
    models = list(runs)
    counts: Dict[str, Dict[str, collections.Counter]] = {}
    modules = set()
    for model, rows in runs.items():
        per = collections.defaultdict(collections.Counter)
        for module, _, kind, _ in rows:
            per[module][kind] += 1
            modules.add(module)
        counts[model] = per

    print("| module | " + " | ".join(f"{m} pass/fail/skip" for m in models) + " |")
    print("|---|" + "---|" * len(models))
    for module in sorted(modules):
        cells = []
        for m in models:
            c = counts[m].get(module, collections.Counter())
            cells.append(f"{c['pass']} / {c['fail']} / {c['skip']}")
        print(f"| {module} | " + " | ".join(cells) + " |")
    cells = []
    for m in models:
        tot = collections.Counter()
        for c in counts[m].values():
            tot.update(c)
        cells.append(f"**{tot['pass']} / {tot['fail']} / {tot['skip']}**")
    print("| **total** | " + " | ".join(cells) + " |")

    # Tests whose outcome differs between models.
    by_test = collections.defaultdict(dict)
    for model, rows in runs.items():
        for module, test, kind, _ in rows:
            by_test[(module, test)][model] = kind
    differ = [(k, v) for k, v in sorted(by_test.items()) if len(set(v.values())) > 1]
    print()
    if differ:
        print("Outcomes that differ between models:")
        print()
        for (module, test), v in differ:
            print(f"- {module} {test}: " + ", ".join(f"{m} {k}" for m, k in v.items()))
    elif len(models) > 1:
        print("Every test has the same outcome under every model.")

    first = models[0]
    print()
    print(f"Failures ({first}):")
    print()
    for module, test, kind, message in runs[first]:
        if kind == "fail":
            print(f"- {module} {test}: {short(message)}")
    print()
    print(f"Skips ({first}), by reason:")
    print()
    reasons = collections.defaultdict(list)
    for module, test, kind, message in runs[first]:
        if kind == "skip":
            reasons[short(message, 200)].append(f"{module} {test}")
    for reason, tests in sorted(reasons.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"- {reason} ({len(tests)}): " + ", ".join(tests))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
