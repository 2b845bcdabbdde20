"""Rewrite the golden files on purpose, saying why, and print what changed.

    python scripts/regen_golden.py --reason "fills now pay the spread"     # every case
    python scripts/regen_golden.py --check                                 # show drift, write nothing
    python scripts/regen_golden.py --reason "..." sma_cross_binance        # some cases

Run from the repository root. A case whose digest and statistics are unchanged is left untouched
(its recorded reason stays). Exit status: 0, or 1 with --check when anything differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backtester.runs import golden  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("cases", nargs="*", metavar="CASE", help="case names (default: all)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--reason", help="why the expected results change (stored with them)")
    mode.add_argument("--check", action="store_true", help="report differences, write nothing")
    args = parser.parse_args(argv)

    available = {case.name: case for case in golden.cases(ROOT / "golden")}
    unknown = [name for name in args.cases if name not in available]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(available)}")
    chosen = [available[name] for name in args.cases] if args.cases else list(available.values())

    changed = 0
    for case in chosen:
        computed = golden.compute(case)
        lines = golden.differences(golden.read_expected(case), computed)
        if not lines:
            print(f"{case.name}: unchanged")
            continue
        changed += 1
        print(f"{case.name}: {len(lines)} change(s)")
        for line in lines:
            print(f"    {line}")
        if not args.check:
            golden.write_expected(case, computed, args.reason)
    verb = "differ" if args.check else "rewritten"
    print(f"{changed} of {len(chosen)} case(s) {verb}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
